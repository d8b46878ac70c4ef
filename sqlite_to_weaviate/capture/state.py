"""Key/value checkpoints in ``_s2w_state`` (relay and backfill progress).

They live in the app's SQLite file next to the outbox so that a checkpoint and the outbox
rows it covers can be updated in one transaction, and survive any sidecar crash.
"""

from __future__ import annotations

import sqlite3

from sqlite_to_weaviate import tool_objects

STATE_TABLE = "_s2w_state"
STATE_DDL = "CREATE TABLE IF NOT EXISTS _s2w_state (key TEXT PRIMARY KEY, value TEXT)"


def ensure_state_table(conn: sqlite3.Connection) -> None:
    """Create (and record) ``_s2w_state`` in the caller's transaction; a user's table of that name is refused."""
    tool_objects.create_table(conn, STATE_TABLE, STATE_DDL)


def has_state_table(conn: sqlite3.Connection) -> bool:
    """The tool's ``_s2w_state`` exists (a user's table of that name does not count)."""
    return tool_objects.has_table(conn, STATE_TABLE)


def get_state(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    """Return the stored value for ``key`` or ``default`` when it is unset."""
    row = conn.execute("SELECT value FROM _s2w_state WHERE key = ?", (key,)).fetchone()
    return default if row is None else row[0]


def set_state(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Store ``value`` under ``key`` (in the caller's transaction if one is open)."""
    conn.execute(
        "INSERT INTO _s2w_state(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
