"""Per-table backfill checkpoints and the pause flag, stored in ``_s2w_state``.

They live in the app's SQLite file so that a page's bulk-lane rows and the checkpoint that
covers them commit in ONE transaction: a SIGKILL can land before the commit (the page is
redone, nothing was written) or after it (the page is done and recorded), never between.
``status`` prints every ``backfill.*`` key, so these records double as the progress report.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from sqlite_to_weaviate.store.progress import read_progress
from sqlite_to_weaviate.store.state import (
    BACKFILL_PREFIX, StateKey, backfill_key, delete_state, ensure_state_table, get_state, has_state_table, set_state,
)

from .keys import KeyValue, decode_key, encode_key

PREFIX = BACKFILL_PREFIX
PAUSED_KEY = StateKey.BACKFILL_PAUSED.value


def state_key(table: str) -> str:
    return backfill_key(table)


@dataclass(frozen=True)
class TableCheckpoint:
    """Where one table's scan stands; ``last_key`` is the last key already in the outbox."""

    table: str
    last_key: tuple[KeyValue, ...] | None = None
    rows_enqueued: int = 0
    total_estimate: int | None = None
    done: bool = False
    started_at: float | None = None
    updated_at: float | None = None
    last_seq: int | None = None
    rows_per_second: float | None = None
    eta_seconds: float | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = dataclasses.asdict(self)
        del data["table"]
        data["last_key"] = encode_key(self.last_key)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, table: str, text: str) -> "TableCheckpoint":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)} - {"table", "last_key"}
        return cls(table=table, last_key=decode_key(data.get("last_key")),
                   **{k: v for k, v in data.items() if k in known})

    def advanced(self, **changes: Any) -> "TableCheckpoint":
        return dataclasses.replace(self, updated_at=time.time(), **changes)


__all__ = ["ensure_state_table", "has_state_table"]  # re-exported: backfill's callers use them from here


def load(conn: sqlite3.Connection, table: str) -> TableCheckpoint | None:
    if not has_state_table(conn):
        return None
    raw = get_state(conn, state_key(table))
    return None if raw is None else TableCheckpoint.from_json(table, raw)


def save(conn: sqlite3.Connection, checkpoint: TableCheckpoint) -> None:
    """Write in the caller's transaction (the page's outbox insert)."""
    set_state(conn, state_key(checkpoint.table), checkpoint.to_json())


def clear(conn: sqlite3.Connection, table: str) -> None:
    delete_state(conn, state_key(table))


def is_paused(conn: sqlite3.Connection) -> bool:
    return has_state_table(conn) and get_state(conn, PAUSED_KEY) == "1"


def set_paused(conn: sqlite3.Connection, paused: bool) -> None:
    """Set or clear the pause flag (in its own short write transaction)."""
    from sqlite_to_weaviate.store.txn import immediate

    with immediate(conn):
        ensure_state_table(conn)
        if paused:
            set_state(conn, PAUSED_KEY, "1")
        else:
            delete_state(conn, PAUSED_KEY)


def bulk_checkpoint(conn: sqlite3.Connection) -> int:
    """Every bulk-lane row with seq <= it (our pages included) is applied."""
    return read_progress(conn).bulk.checkpoint


def backlog(conn: sqlite3.Connection) -> int:
    """Bulk-lane rows not yet applied: our own pages (and repairs, retries). Live traffic has
    its own lane and is never counted here: history makes room for it, not the reverse."""
    return read_progress(conn).bulk.depth
