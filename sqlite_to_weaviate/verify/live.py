"""Reading the pipeline's progress so that differences under live writes are re-checked, not reported.

The outbox seq is AUTOINCREMENT, so ``sqlite_sequence`` holds the highest seq ever issued
even after the relay pruned the rows; the relay's checkpoint (``_s2w_state``
"relay.checkpoint") says every change with seq <= it is applied. A key is *pending* when
the outbox still holds a row for it beyond the checkpoint: its object may legitimately lag
its row. All reads here are short read transactions on the app's database; nothing is
written to it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.mapping.model import quote_identifier
from sqlite_to_weaviate.sqlite_text import bind, fetch_all, has_invalid, marker

CHECKPOINT_KEY = "relay.checkpoint"


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return tool_objects.has_table(conn, name)


def capture_installed(conn: sqlite3.Connection) -> bool:
    return _table_exists(conn, "_s2w_outbox")


def high_water(conn: sqlite3.Connection) -> int:
    """Highest outbox seq ever issued (0 without capture)."""
    if not capture_installed(conn):
        return 0
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = '_s2w_outbox'").fetchone()
    top = conn.execute("SELECT coalesce(max(seq), 0) FROM _s2w_outbox").fetchone()[0]
    return max(int(row[0]) if row else 0, int(top))


def checkpoint(conn: sqlite3.Connection) -> int:
    if not _table_exists(conn, "_s2w_state"):
        return 0
    row = conn.execute("SELECT value FROM _s2w_state WHERE key = ?", (CHECKPOINT_KEY,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def pending_keys(conn: sqlite3.Connection, table: str, width: int, after_seq: int) -> set[tuple]:
    """Keys of ``table`` with outbox rows beyond ``after_seq`` (not yet applied), and keys the
    relay still owes a re-send after a fault (their object may still change)."""
    if not capture_installed(conn):
        return set()
    cols = ", ".join(f"k{i}" for i in range(1, width + 1))
    keys = {tuple(r) for r in fetch_all(conn, f"SELECT {cols} FROM _s2w_outbox WHERE tbl = ? AND seq > ?",
                                        (table, after_seq))}
    if _table_exists(conn, "_s2w_resends"):
        keys.update(tuple(r) for r in fetch_all(
            conn, f"SELECT {cols} FROM _s2w_resends WHERE tbl = ? AND key_width = ?", (table, width)))
    return keys


def resends_pending(conn: sqlite3.Connection) -> int:
    """Keys the relay still owes a re-send (see ``writer.resends``)."""
    if not _table_exists(conn, "_s2w_resends"):
        return 0
    return int(conn.execute("SELECT count(*) FROM _s2w_resends").fetchone()[0])


def wait_caught_up(conn: sqlite3.Connection, target_seq: int, timeout: float, poll: float = 0.1,
                   stall: float = 15.0) -> bool:
    """Poll until the relay checkpoint reaches ``target_seq``; False on timeout.

    Also gives up when the checkpoint has not moved for ``stall`` seconds (no relay
    running): waiting longer cannot help, and the caller reports keys as unsettled.
    """
    now = time.monotonic()
    deadline, moved_at, last = now + timeout, now, checkpoint(conn)
    while True:
        current = checkpoint(conn)
        if current >= target_seq:
            return True
        now = time.monotonic()
        if current != last:
            moved_at, last = now, current
        if now >= deadline or now - moved_at >= stall:
            return False
        time.sleep(poll)


def dead_letter_uuids(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, str]]:
    """uuid -> (stage, reason) of rows the writer parked as dead letters for ``table``.

    stage "mapping": the writer could not convert the row; "weaviate": the server rejected it.
    """
    if not _table_exists(conn, "_s2w_dead_letters"):
        return {}
    return {u.lower(): (stage, reason) for u, stage, reason in
            conn.execute("SELECT uuid, stage, reason FROM _s2w_dead_letters WHERE tbl = ?", (table,))}


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
