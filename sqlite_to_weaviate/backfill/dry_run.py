"""``--dry-run``: what a backfill would do, measured on a read-only connection, writing nothing.

Counts rows, previews each collection (properties and their Weaviate types), times a few
keyset pages (the enqueue side) and a page of full rows through the mapping (the relay's
per-row cost), and estimates the duration from the slower of those and the rows/s cap.
The real end-to-end rate is set by the workers and Weaviate; ``bench/backfill_bench.py``
measures it.
"""

from __future__ import annotations

import json
import sqlite3
import time

from sqlite_to_weaviate.mapping import TableMapping
from sqlite_to_weaviate.mapping.model import quote_identifier
from sqlite_to_weaviate.sqlite_text import bind, fetch_all, marker

from . import checkpoint as ckpt
from .options import BackfillOptions, TablePlan
from .scan import count_rows


def _key_rate(conn: sqlite3.Connection, table: TableMapping, page_size: int, pages: int) -> float | None:
    pk = ", ".join(quote_identifier(c) for c in table.primary_key)
    t = quote_identifier(table.table)
    after: tuple | None = None
    rows = 0
    started = time.perf_counter()
    for _ in range(pages):
        if after is None:
            batch = fetch_all(conn, f"SELECT {pk} FROM {t} ORDER BY {pk} LIMIT ?", (page_size,))
        else:
            marks = ", ".join(marker(v) for v in after)
            batch = fetch_all(conn, f"SELECT {pk} FROM {t} WHERE ({pk}) > ({marks}) ORDER BY {pk} LIMIT ?",
                              (*[bind(v) for v in after], page_size))
        if not batch:
            break
        rows += len(batch)
        after = tuple(batch[-1])
    elapsed = time.perf_counter() - started
    return rows / elapsed if rows and elapsed > 0 else None


def _convert_rate(conn: sqlite3.Connection, table: TableMapping, page_size: int) -> float | None:
    started = time.perf_counter()
    names = table.source_columns  # the SELECT's columns, in order
    rows = 0
    for values in fetch_all(conn, f"{table.select_sql()} LIMIT ?", (page_size,)):
        try:
            table.to_object(dict(zip(names, values)))
        except Exception:  # noqa: BLE001 - a bad row costs the same; the relay dead-letters it
            pass
        rows += 1
    elapsed = time.perf_counter() - started
    return rows / elapsed if rows and elapsed > 0 else None


def plan_table(conn: sqlite3.Connection, table: TableMapping, options: BackfillOptions) -> TablePlan:
    rows = count_rows(conn, table.table)
    key_rate = _key_rate(conn, table, options.page_size, options.dry_run_sample_pages)
    convert_rate = _convert_rate(conn, table, min(options.page_size, 1000))
    cp = ckpt.load(conn, table.table)
    remaining = rows
    if cp is not None and not options.restart:
        remaining = 0 if cp.done else max(0, rows - cp.rows_enqueued)
    rates = [r for r in (key_rate, convert_rate, options.rows_per_second) if r]
    estimate = remaining / min(rates) if rates else (0.0 if remaining == 0 else None)
    vector = table.vector_column or (", ".join(f"{n}<-{c}" for n, c in table.named_vectors) or None)
    return TablePlan(
        rows=rows, collection=table.collection,
        properties=[(c.column, c.property, c.data_type.value) for c in table.columns],
        vector=vector, key_rows_per_second=key_rate, convert_rows_per_second=convert_rate,
        estimated_seconds=estimate,
        checkpoint=None if cp is None else json.loads(cp.to_json()),
    )
