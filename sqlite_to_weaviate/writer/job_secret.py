"""Where the job secret comes from: a setting, a file, or the database it was generated in.

The relay and the workers authenticate everything that crosses Redis with one shared
secret (:mod:`.signing`). It must not live in Redis — whoever can write to Redis is the
party it protects against. The relay runs beside the SQLite file, so a secret generated
by ``init`` (or by the first relay) is kept in ``_s2w_state`` and read from there by the
relay and by workers that run on the same host (``run``'s own workers, the compose
workers, which mount the database). Workers on other hosts, which see only Redis and
Weaviate, must be given it explicitly: ``S2W_JOB_SECRET`` or ``S2W_JOB_SECRET_FILE``
(``sqlite-to-weaviate job-secret`` prints the stored one). A secret given explicitly
wins over the stored one and is never written to the database. What makes a secret
acceptable (:func:`validate_job_secret`) is declared with the ``job_secret`` setting, in
``settings.py``.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from sqlite_to_weaviate.store.state import StateKey, ensure_state_table, get_state, has_state_table, set_state
from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.settings import JOB_SECRET_MIN_LENGTH, validate_job_secret
from sqlite_to_weaviate.weaviate_adapter import Secret

STATE_KEY = StateKey.JOB_SECRET
ENV_VAR = "S2W_JOB_SECRET"
FILE_ENV_VAR = "S2W_JOB_SECRET_FILE"
MIN_LENGTH = JOB_SECRET_MIN_LENGTH


def generate_job_secret() -> Secret:
    """256 random bits as 64 hex characters."""
    return Secret(secrets.token_hex(32))


def read_job_secret_file(path: str | Path) -> Secret:
    """The secret kept in ``path`` (surrounding whitespace and the final newline ignored)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"job secret file {str(file)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the job secret file {str(file)!r}: {type(exc).__name__}") from None
    if not text:
        raise ConfigError(f"job secret file {str(file)!r} is empty")
    return validate_job_secret(Secret(text))


def _has_state(conn: sqlite3.Connection) -> bool:
    return has_state_table(conn)


def stored_job_secret(conn: sqlite3.Connection) -> Secret | None:
    """The secret kept in the database, if one was generated."""
    if not _has_state(conn):
        return None
    value = get_state(conn, STATE_KEY)
    return Secret(value) if value else None


def ensure_stored_job_secret(conn: sqlite3.Connection, *, rotate: bool = False) -> Secret:
    """The stored secret, generated (or replaced, with ``rotate``) in one write transaction."""
    with immediate(conn, join=True):
        ensure_state_table(conn)  # registered as the tool's; a user's _s2w_state is refused
        current = get_state(conn, STATE_KEY)
        if current and not rotate:
            return Secret(current)
        secret = generate_job_secret()
        set_state(conn, STATE_KEY, secret.reveal())
        return secret


def relay_job_secret(explicit: Secret | None, conn: sqlite3.Connection) -> Secret:
    """What the relay signs with: the explicit secret, else the stored one (generated if absent)."""
    if explicit is not None:
        return explicit
    return ensure_stored_job_secret(conn)


def worker_job_secret(explicit: Secret | None, database: Path | None) -> Secret | None:
    """What a worker verifies with: the explicit secret, else the one stored in the database
    when this host can read it; None when neither is available (yet)."""
    if explicit is not None:
        return explicit
    if database is None or not database.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return None
    try:
        return stored_job_secret(conn)
    except sqlite3.Error:
        return None
    finally:
        conn.close()
