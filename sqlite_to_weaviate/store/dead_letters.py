"""Rows Weaviate (or the mapping) refused, parked with the reason until someone fixes them.

A dead letter counts as handled for the checkpoint (the outbox can move on, the rest of
the batch lands), but it is never silently dropped: ``status`` shows the count, and
``dead-letters retry`` re-enqueues the keys through the outbox after a fix (mapping,
schema or data), so the retry is ordered with live traffic like any other change. A key
that later syncs successfully has its dead letter cleared automatically.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from . import registry as tool_objects
from .lanes import enqueue_keys
from .txn import immediate

MAX_KEY = 8
_KEY_COLS = ", ".join(f"k{i}" for i in range(1, MAX_KEY + 1))

DEAD_LETTERS_DDL = (
    "CREATE TABLE IF NOT EXISTS _s2w_dead_letters ("
    "uuid TEXT PRIMARY KEY, tbl TEXT NOT NULL, "
    f"{_KEY_COLS}, key_width INTEGER NOT NULL, stage TEXT NOT NULL, reason TEXT NOT NULL, "
    "first_seen REAL NOT NULL, last_seen REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 1)"
)


@dataclass(frozen=True)
class DeadLetter:
    uuid: str
    table: str
    key: tuple
    stage: str  # "mapping" (could not convert) or "weaviate" (rejected by the server)
    reason: str
    first_seen: float
    last_seen: float
    attempts: int


def ensure_table(conn: sqlite3.Connection) -> None:
    """Create (and record) the table in the caller's transaction; a user's table of that name is refused."""
    tool_objects.create_table(conn, "_s2w_dead_letters", DEAD_LETTERS_DDL)


def record(conn: sqlite3.Connection, letters: Iterable[tuple[str, str, tuple, str, str]]) -> int:
    """Upsert (uuid, table, key, stage, reason) rows; repeated failures bump ``attempts``."""
    now = time.time()
    rows = []
    for object_id, table, key, stage, reason in letters:
        padded = tuple(key) + (None,) * (MAX_KEY - len(key))
        rows.append((object_id, table, *padded, len(key), stage, reason[:4000], now, now))
    if not rows:
        return 0
    marks = ", ".join("?" * (MAX_KEY + 7))
    with immediate(conn, join=True):
        ensure_table(conn)
        conn.executemany(
            f"INSERT INTO _s2w_dead_letters(uuid, tbl, {_KEY_COLS}, key_width, stage, reason, first_seen, last_seen) "
            f"VALUES ({marks}) ON CONFLICT(uuid) DO UPDATE SET reason = excluded.reason, stage = excluded.stage, "
            "last_seen = excluded.last_seen, attempts = attempts + 1",
            rows,
        )
    return len(rows)


def clear(conn: sqlite3.Connection, uuids: Iterable[str]) -> int:
    """Remove dead letters of keys that have since synced successfully."""
    ids = [(u,) for u in uuids]
    if not ids:
        return 0
    with immediate(conn, join=True):
        ensure_table(conn)
        conn.executemany("DELETE FROM _s2w_dead_letters WHERE uuid = ?", ids)
    return len(ids)


def list_letters(conn: sqlite3.Connection, *, table: str | None = None, limit: int | None = None) -> list[DeadLetter]:
    if not _exists(conn):
        return []
    sql = f"SELECT uuid, tbl, {_KEY_COLS}, key_width, stage, reason, first_seen, last_seen, attempts FROM _s2w_dead_letters"
    params: list = []
    if table is not None:
        sql += " WHERE tbl = ?"
        params.append(table)
    sql += " ORDER BY first_seen"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    out = []
    for row in conn.execute(sql, params):
        width = row[2 + MAX_KEY]
        out.append(DeadLetter(row[0], row[1], tuple(row[2:2 + width]), *row[3 + MAX_KEY:]))
    return out


def count(conn: sqlite3.Connection) -> int:
    if not _exists(conn):
        return 0
    return int(conn.execute("SELECT count(*) FROM _s2w_dead_letters").fetchone()[0])


def count_by_table(conn: sqlite3.Connection, tables: list[str]) -> dict[str, int]:
    """Dead letters per table, for ``tables`` (tables without any are left out)."""
    if not _exists(conn) or not tables:
        return {}
    marks = ", ".join("?" * len(tables))
    return {t: n for t, n in conn.execute(
        f"SELECT tbl, count(*) FROM _s2w_dead_letters WHERE tbl IN ({marks}) GROUP BY tbl ORDER BY tbl", tables)}


def by_table(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, str]]:
    """uuid -> (stage, reason) of ``table``'s dead letters (stage "mapping" or "weaviate")."""
    if not _exists(conn):
        return {}
    return {u.lower(): (stage, reason) for u, stage, reason in
            conn.execute("SELECT uuid, stage, reason FROM _s2w_dead_letters WHERE tbl = ?", (table,))}


def uuids(conn: sqlite3.Connection) -> set[str]:
    if not _exists(conn):
        return set()
    return {r[0] for r in conn.execute("SELECT uuid FROM _s2w_dead_letters")}


def retry(conn: sqlite3.Connection, *, table: str | None = None, uuid: str | None = None) -> int:
    """Re-enqueue dead-lettered keys through the bulk lane (op 'R'); the letters stay until they sync."""
    letters = [d for d in list_letters(conn, table=table) if uuid is None or d.uuid == uuid]
    by_table: dict[str, list[tuple]] = {}
    for letter in letters:
        by_table.setdefault(letter.table, []).append(letter.key)
    with immediate(conn):
        for tbl, keys in by_table.items():
            enqueue_keys(conn, tbl, keys, op="R", ctx={"origin": "dead-letters retry"})  # history lane: live first
    return len(letters)


def drop(conn: sqlite3.Connection, *, table: str | None = None, uuid: str | None = None) -> int:
    """Forget dead letters (the operator accepts these rows will not be in Weaviate)."""
    if not _exists(conn):
        return 0
    sql, params = "DELETE FROM _s2w_dead_letters WHERE 1=1", []
    if table is not None:
        sql += " AND tbl = ?"
        params.append(table)
    if uuid is not None:
        sql += " AND uuid = ?"
        params.append(uuid)
    with immediate(conn, join=True):
        return conn.execute(sql, params).rowcount


def _exists(conn: sqlite3.Connection) -> bool:
    return tool_objects.has_table(conn, "_s2w_dead_letters")
