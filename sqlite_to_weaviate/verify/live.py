"""Reading the pipeline's progress so that differences under live writes are re-checked, not reported.

Each lane's seq is AUTOINCREMENT, so ``sqlite_sequence`` holds the highest seq ever issued
even after the relay pruned the rows; each lane's checkpoint says every change with a seq
at or below it is applied (``store.progress``). A key is *pending* when either lane still
holds a row for it beyond its checkpoint, or a re-send of it is owed: its object may
legitimately lag its row. All reads here are short read transactions on the app's database; nothing is
written to it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from sqlite_to_weaviate.mapping.model import quote_identifier
from sqlite_to_weaviate.sqlite_text import bind, fetch_all, has_invalid, marker
from sqlite_to_weaviate.store import dead_letters, lanes, progress, registry, resends
from sqlite_to_weaviate.store.lanes import BULK, LIVE
from sqlite_to_weaviate.store.progress import Marks


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return registry.has_table(conn, name)


def capture_installed(conn: sqlite3.Connection) -> bool:
    return _table_exists(conn, "_s2w_outbox")


def high_water(conn: sqlite3.Connection) -> Marks:
    """Each lane's highest seq ever issued (0 without capture)."""
    return progress.marks(conn)


def checkpoint(conn: sqlite3.Connection) -> Marks:
    """Each lane's relay checkpoint: every change with a seq at or below it is applied."""
    return Marks(progress.checkpoint(conn, LIVE), progress.checkpoint(conn, BULK))


def applied(done: Marks, target: Marks) -> bool:
    """``done`` (checkpoints) covers every change up to ``target`` (high-water marks)."""
    return done.live >= target.live and done.bulk >= target.bulk


def pending_keys(conn: sqlite3.Connection, table: str, width: int, after: Marks) -> set[tuple]:
    """Keys of ``table`` with rows in either lane beyond ``after`` (not yet applied), and keys
    the relay still owes a re-send after a fault (their object may still change)."""
    if not capture_installed(conn):
        return set()
    keys = lanes.pending_keys(conn, LIVE, table, width, after.live)
    keys |= lanes.pending_keys(conn, BULK, table, width, after.bulk)
    return keys | resends.keys_of(conn, table, width)


def resends_pending(conn: sqlite3.Connection) -> int:
    """Keys the relay still owes a re-send (see ``store.resends``)."""
    return progress.read_progress(conn).owed


def wait_caught_up(conn: sqlite3.Connection, target: Marks, timeout: float, poll: float = 0.1,
                   stall: float = 15.0) -> bool:
    """Poll until the relay's checkpoints cover ``target``; False on timeout.

    Also gives up when nothing has moved for ``stall`` seconds (no relay running): waiting
    longer cannot help, and the caller reports keys as unsettled. Owed re-sends do not
    hold this up; their keys count as pending instead (:func:`pending_keys`).
    """
    return progress.wait_applied(conn, target, timeout, poll=poll, stall=stall, owed=False)


def dead_letter_uuids(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, str]]:
    """uuid -> (stage, reason) of rows the writer parked as dead letters for ``table``.

    stage "mapping": the writer could not convert the row; "weaviate": the server rejected it.
    """
    return dead_letters.by_table(conn, table)


def read_rows(conn: sqlite3.Connection, table, keys: Iterable[tuple]) -> dict[tuple, dict]:
    """Current rows for ``keys`` (one read transaction; absent keys are deleted rows)."""
    keys = list(keys)
    columns = table.source_columns
    pk = table.primary_key
    positions = [columns.index(c) for c in pk]
    found: dict[tuple, dict] = {}
    cond = " AND ".join(f"{quote_identifier(c)} IS ?" for c in pk)
    sql = f"{table.select_sql()} WHERE {cond}"
    for key in keys:
        if has_invalid(key):  # a text key that is not UTF-8: bound back as the same TEXT
            exact = " AND ".join(f"{quote_identifier(c)} IS {marker(v)}" for c, v in zip(pk, key))
            rows = fetch_all(conn, f"{table.select_sql()} WHERE {exact}", [bind(v) for v in key])
        else:
            rows = fetch_all(conn, sql, key)
        for values in rows:
            found[tuple(values[i] for i in positions)] = dict(zip(columns, values))
    return found
