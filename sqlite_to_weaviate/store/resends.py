"""Keys the relay owes one more, later send: kept in SQLite so no crash can drop them.

When the relay cannot know what a job wrote (its worker died or froze, Weaviate timed out
or crashed under it, Redis lost the job), a write the job had started can still land
later, after a newer change to the same key. The relay re-sends the job's keys at once,
and once more when every such write must be over (``writer.job.write_horizon``): that
second send reads the row again, so the last write of the key is its current state.

That promise has to outlive the relay, so it is a row here, written in its own short
transaction before the relay moves on, and deleted only after the re-send was applied.
A row is deleted only if it was due no later than the dispatch that applied it, so a
newer re-send scheduled meanwhile survives. ``status``, ``ready`` and ``Relay.drain`` count
these rows as work still pending.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from . import registry as tool_objects
from .txn import immediate

MAX_KEY = 8
_KEY_COLS = ", ".join(f"k{i}" for i in range(1, MAX_KEY + 1))

TABLE = "_s2w_resends"
RESENDS_DDL = (
    "CREATE TABLE _s2w_resends ("
    "uuid TEXT PRIMARY KEY, tbl TEXT, "
    f"{_KEY_COLS}, key_width INTEGER, due REAL, reason TEXT, first_seen REAL)"
)


@dataclass(frozen=True)
class Resend:
    """One key to send again at ``due`` (wall-clock seconds)."""

    object_id: str
    table: str
    key: tuple
    due: float
    reason: str


def ensure_table(conn: sqlite3.Connection) -> None:
    """Create (and record) the table in the caller's transaction; a user's table of that name is refused."""
    tool_objects.create_table(conn, TABLE, RESENDS_DDL)


def _exists(conn: sqlite3.Connection) -> bool:
    return tool_objects.has_table(conn, TABLE)


def schedule(conn: sqlite3.Connection, items: Iterable[tuple[str, str, tuple]], due: float, reason: str) -> int:
    """Record (uuid, table, key) to re-send at ``due``; an existing row keeps the later due.

    Runs in its own write transaction (or the caller's, if one is open) and is durable when
    it returns.
    """
    now = time.time()
    rows = []
    for object_id, table, key in items:
        padded = tuple(key) + (None,) * (MAX_KEY - len(key))
        rows.append((object_id, table, *padded, len(key), due, reason[:500], now))
    if not rows:
        return 0
    marks = ", ".join("?" * (MAX_KEY + 6))
    with immediate(conn, join=True):
        ensure_table(conn)
        conn.executemany(
            f"INSERT INTO _s2w_resends(uuid, tbl, {_KEY_COLS}, key_width, due, reason, first_seen) "
            f"VALUES ({marks}) ON CONFLICT(uuid) DO UPDATE SET due = max(due, excluded.due), "
            "reason = excluded.reason",
            rows,
        )
    return len(rows)


def load(conn: sqlite3.Connection) -> list[Resend]:
    """Every pending re-send (the relay loads them when it starts)."""
    if not _exists(conn):
        return []
    out = []
    for row in conn.execute(f"SELECT uuid, tbl, {_KEY_COLS}, key_width, due, reason FROM _s2w_resends ORDER BY due"):
        width = int(row[MAX_KEY + 2])
        out.append(Resend(row[0], row[1], tuple(row[2:2 + width]), float(row[MAX_KEY + 3]), row[MAX_KEY + 4] or ""))
    return out


def clear(conn: sqlite3.Connection, done: Iterable[tuple[str, float]]) -> int:
    """Delete rows whose re-send was applied: (uuid, due of the re-send that was dispatched).

    Call inside the caller's write transaction (the relay's checkpoint transaction).
    """
    pairs = list(done)
    if not pairs or not _exists(conn):
        return 0
    before = conn.total_changes
    conn.executemany("DELETE FROM _s2w_resends WHERE uuid = ? AND due <= ?", pairs)
    return conn.total_changes - before


def keys_of(conn: sqlite3.Connection, table: str, width: int) -> set[tuple]:
    """Keys of ``table`` owed a re-send (their objects may still change)."""
    if not _exists(conn):
        return set()
    cols = ", ".join(f"k{i}" for i in range(1, width + 1))
    return {tuple(r) for r in conn.execute(f"SELECT {cols} FROM _s2w_resends WHERE tbl = ? AND key_width = ?",
                                           (table, width))}


def pending(conn: sqlite3.Connection) -> tuple[int, float | None]:
    """(how many re-sends are pending, the earliest due time) for ``status`` and ``ready``."""
    if not _exists(conn):
        return 0, None
    count, first = conn.execute("SELECT count(*), min(due) FROM _s2w_resends").fetchone()
    return int(count), (float(first) if first is not None else None)
