"""Key/value state in ``_s2w_state``: checkpoints, the phase, the last verify, secrets.

It lives in the app's SQLite file next to the outbox, so a checkpoint and the outbox rows
it covers change in one transaction and survive any sidecar crash. Every key is named
here, once (:class:`StateKey`, :func:`backfill_key`); callers never spell a key string.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator

from . import registry

STATE_TABLE = "_s2w_state"
STATE_DDL = "CREATE TABLE IF NOT EXISTS _s2w_state (key TEXT PRIMARY KEY, value TEXT)"


class StateKey(str, enum.Enum):
    """Every fixed key of ``_s2w_state`` and what owns its value."""

    RELAY_CHECKPOINT = "relay.checkpoint"          # writer: every live change with seq <= it is applied
    BULK_CHECKPOINT = "relay.bulk_checkpoint"      # writer: every bulk-lane row with seq <= it is applied
    RELAY_ERROR = "relay.last_error"               # writer.stuck: the current error streak
    RELAY_RUN_ID = "relay.run_id"                  # writer: the run that last set the Redis sentinel
    JOB_SECRET = "security.job_secret"             # writer.job_secret: the HMAC key, unless given explicitly
    PHASE = "phase"                                # operate.phases
    VERIFY_LAST = "verify.last"                    # operate.phases: the last verify's summary
    BACKFILL_PAUSED = "backfill.paused"            # backfill: the operator's pause flag
    LEGACY_OWNERSHIP = "migration.collections"     # operate.ownership: pre-registry record (read only)
    EMBEDDING_VERSIONS = "embeddings.versions"     # collection_versions: the collection versions (JSON)
    EMBEDDING_GENERATION = "embeddings.generation"  # collection_versions: bumped with every version change
    EMBEDDING_RELAY_GENERATION = "embeddings.relay_generation"  # writer.version_watch: what the relay runs with


BACKFILL_PREFIX = "backfill."


def backfill_key(table: str) -> str:
    """The key of ``table``'s backfill checkpoint."""
    return BACKFILL_PREFIX + table


def _name(key: str) -> str:
    return key.value if isinstance(key, StateKey) else str(key)


def ensure_state_table(conn: sqlite3.Connection) -> None:
    """Create (and record) ``_s2w_state`` in the caller's transaction; a user's table of that name is refused."""
    registry.create_table(conn, STATE_TABLE, STATE_DDL)


def has_state_table(conn: sqlite3.Connection) -> bool:
    """The tool's ``_s2w_state`` exists (a user's table of that name does not count)."""
    return registry.has_table(conn, STATE_TABLE)


def get_state(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    """Return the stored value for ``key`` or ``default`` when it is unset (or there is no table)."""
    if not has_state_table(conn):
        return default
    row = conn.execute("SELECT value FROM _s2w_state WHERE key = ?", (_name(key),)).fetchone()
    return default if row is None else row[0]


def get_int(conn: sqlite3.Connection, key: StateKey, default: int = 0) -> int:
    raw = get_state(conn, key)
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        return default


def set_state(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Store ``value`` under ``key`` (in the caller's transaction if one is open)."""
    conn.execute(
        "INSERT INTO _s2w_state(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (_name(key), value),
    )


def delete_state(conn: sqlite3.Connection, key: str) -> None:
    """Remove ``key`` (in the caller's transaction if one is open)."""
    if has_state_table(conn):
        conn.execute("DELETE FROM _s2w_state WHERE key = ?", (_name(key),))


def items_with_prefix(conn: sqlite3.Connection, prefix: str) -> Iterator[tuple[str, str]]:
    """(key, value) of every key starting with ``prefix`` (e.g. the backfill checkpoints)."""
    if not has_state_table(conn):
        return iter(())
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return iter(conn.execute("SELECT key, value FROM _s2w_state WHERE key LIKE ? ESCAPE '\\' ORDER BY key",
                             (escaped + "%",)).fetchall())
