"""Open the application's SQLite file the way every long-running component must.

Autocommit mode (``isolation_level=None``) so that transactions are explicit and short;
WAL so readers never block the app's writers; a busy timeout so our short writes
(checkpoint, dead letters, backfill key pages) wait for the app instead of failing.
Opening a file that is not a SQLite database fails with a message that says so.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_to_weaviate.errors import ConfigError

BUSY_TIMEOUT_MS = 10_000


def sqlite_path_from_url(url_or_path: str | Path) -> Path:
    """Accept ``sqlite:///path``, ``sqlite:////abs/path`` or a plain path."""
    text = str(url_or_path).strip()
    if not text:
        raise ConfigError("sqlite_url is empty: give a path or sqlite:///path/to/app.db")
    if text.startswith("sqlite:"):
        if not text.startswith("sqlite:///"):
            raise ConfigError(f"sqlite_url {text!r}: expected sqlite:///relative.db or sqlite:////absolute.db")
        text = text[len("sqlite:///"):]
        if text in ("", ":memory:"):
            raise ConfigError(f"sqlite_url {url_or_path!r}: an in-memory database cannot be migrated live; give a file")
    return Path(text)


def open_db(path: str | Path, *, create: bool = False, readonly: bool = False, wal: bool = True) -> sqlite3.Connection:
    """A connection to the app's database, validated to be a real SQLite file.

    ``readonly`` opens it with ``mode=ro``: nothing can be written, and the journal mode is
    left alone. ``wal=False`` allows writes but never switches the app's file to WAL
    (commands that only record a result, like ``verify``, are no reason to change how the
    app's database journals); the long-running components that write (relay, backfill,
    ``init``) use the default and switch it.
    """
    path = sqlite_path_from_url(path)
    if not create and not path.exists():
        raise ConfigError(f"SQLite database {str(path)!r} does not exist")
    if path.exists() and path.is_dir():
        raise ConfigError(f"SQLite database {str(path)!r} is a directory, not a database file")
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                           check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if not readonly and wal:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        if "not a database" in str(exc) or "file is encrypted" in str(exc):
            raise ConfigError(f"{str(path)!r} is not a SQLite database ({exc})") from None
        raise ConfigError(f"cannot open SQLite database {str(path)!r}: {exc}") from None
    return conn


def check_integrity(path: str | Path, *, max_errors: int = 5) -> None:
    """``PRAGMA quick_check`` on a read-only connection; ConfigError when the file is damaged.

    Run before anything writes to the app's database (``init``, ``migrate``): installing
    triggers into a file with a corrupt page would only move the failure to the backfill,
    half-way through a migration. quick_check reads every page (O(size), no index
    cross-check), so it is kept to the commands that start a migration.
    """
    conn = open_db(path, readonly=True)
    try:
        try:
            found = [str(r[0]) for r in conn.execute(f"PRAGMA quick_check({int(max_errors)})").fetchall()]
        except sqlite3.DatabaseError as exc:
            found = [str(exc)]
    finally:
        conn.close()
    if found != ["ok"]:
        detail = "; ".join(" ".join(line.split()) for line in found[:max_errors])
        raise ConfigError(
            f"SQLite database {str(path)!r} is damaged (PRAGMA quick_check: {detail}); restore it from a backup "
            "or rescue its data with the sqlite3 shell's .recover, then run again; nothing was changed"
        )
