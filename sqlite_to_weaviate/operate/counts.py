"""The count check of the original design: SQLite rows vs Weaviate objects, per table, must be equal.

Verify's content-hash reconciliation is the real proof, but a count is what an operator
reads first, and the original design reports it per collection
(``messages: 3408 rows -> Message: 3408 objects``). Counts race with live writes, so they
are taken as a sandwich: count the rows and read the outbox high-water mark in one read
transaction, wait until the relay has applied everything up to that mark, count the
objects, and read the mark again. Only when no change was captured in between are the
two counts comparable; otherwise the check is retried, and after ``attempts`` it is
reported as not comparable (the app kept writing) rather than as a false mismatch.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlite_to_weaviate.mapping import Mapping, TableMapping
from sqlite_to_weaviate.mapping.model import quote_identifier
from sqlite_to_weaviate.verify import live


@dataclass
class TableCount:
    table: str
    collection: str
    rows: int
    objects: int

    @property
    def equal(self) -> bool:
        return self.rows == self.objects

    def line(self) -> str:
        text = f"{self.table}: {self.rows} rows -> {self.collection}: {self.objects} objects"
        if not self.equal:
            text += f"  MISMATCH ({self.rows - self.objects:+d})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "equal": self.equal}


@dataclass
class CountCheck:
    tables: list[TableCount]
    comparable: bool        # False: the app kept writing during every attempt

    @property
    def mismatches(self) -> list[TableCount]:
        return [t for t in self.tables if not t.equal] if self.comparable else []


def count_objects(client: Any, collection_name: str) -> int:
    """Objects in a collection (every tenant of a multi-tenant one)."""
    collection = client.collections.use(collection_name)
    if collection.config.get().multi_tenancy_config.enabled:
        return sum(collection.with_tenant(t).aggregate.over_all(total_count=True).total_count or 0
                   for t in collection.tenants.get())
    return collection.aggregate.over_all(total_count=True).total_count or 0


def _row_counts(conn: sqlite3.Connection, tables: list[TableMapping]) -> tuple[dict[str, int], live.Marks]:
    conn.execute("BEGIN")
    try:
        counts = {t.table: int(conn.execute(f"SELECT count(*) FROM {quote_identifier(t.table)}").fetchone()[0])
                  for t in tables}
        return counts, live.high_water(conn)
    finally:
        conn.execute("COMMIT")


def check_counts(conn: sqlite3.Connection, client: Any, mapping: Mapping, *, attempts: int = 5,
                 catch_up_timeout: float = 60.0) -> CountCheck:
    """Compare row and object counts per table on a quiet snapshot (see the module docstring).

    ``conn`` is a read-only connection to the app's database (autocommit mode); a relay
    must be running for the catch-up wait to end early.
    """
    tables = mapping.collections_in_order()
    result: list[TableCount] = []
    for attempt in range(max(1, attempts)):
        rows, mark = _row_counts(conn, tables)
        live.wait_caught_up(conn, mark, catch_up_timeout)
        objects = {t.table: count_objects(client, t.collection) for t in tables}
        result = [TableCount(t.table, t.collection, rows[t.table], objects[t.table]) for t in tables]
        if live.high_water(conn) == mark and live.applied(live.checkpoint(conn), mark):
            return CountCheck(result, comparable=True)
        time.sleep(min(2.0, 0.2 * (attempt + 1)))
    return CountCheck(result, comparable=False)
