"""``--dry-run``: what a backfill would do, measured on a read-only connection, writing nothing.

Counts rows, previews each collection (properties and their Weaviate types), and reads and
converts **every** row through the mapping exactly as the relay will (keyset pages, each
its own short read, so memory stays flat and WAL checkpoints are never starved). That
gives the exact number of rows the mapping will refuse -- the dead letters a real run
would leave -- grouped by column and reason with the mapping change that keeps them, and
a measured conversion rate. The estimate is the slower of the measured key-enqueue rate,
the measured conversion rate and the rows/s cap; Weaviate's own write speed cannot be
measured without writing (``bench/backfill_bench.py`` measures it), and rows Weaviate
itself rejects (not the mapping) cannot be predicted.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlite_to_weaviate.mapping import TableMapping
from sqlite_to_weaviate.mapping.model import quote_identifier
from sqlite_to_weaviate.mapping.refusals import TableRefusals, refusals_of_row
from sqlite_to_weaviate.mapping.rows import iter_row_pages
from sqlite_to_weaviate.sqlite_text import bind, fetch_all, marker

from . import checkpoint as ckpt
from .options import BackfillOptions, TablePlan
from .scan import count_rows

#: Rows per keyset page of the conversion scan (each page is one short read).
SCAN_PAGE = 1000

#: progress(rows read so far) during the conversion scan of one table.
ScanProgress = Callable[[int], None]


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


@dataclass
class ConversionScan:
    """Every row of a table read and converted: refusals and the measured cost."""

    rows: int = 0
    seconds: float = 0.0
    refusals: TableRefusals = field(default_factory=lambda: TableRefusals(""))

    @property
    def rows_per_second(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds > 0 else None


def scan_conversions(conn: sqlite3.Connection, table: TableMapping, *, page_size: int = SCAN_PAGE,
                     progress: ScanProgress | None = None) -> ConversionScan:
    """Read every row in keyset pages and convert it with the mapping; nothing is written.

    Rows with a NULL key value are refused (they have no object id), as the writer would.
    """
    scan = ConversionScan(refusals=TableRefusals(table.table))
    names = list(table.source_columns)
    positions = [names.index(c) for c in table.primary_key]
    started = time.perf_counter()
    for batch in iter_row_pages(conn, table, page_size):
        for values in batch:
            errors = refusals_of_row(table, dict(zip(names, values)))
            if errors:
                scan.refusals.add_errors(tuple(values[i] for i in positions), errors)
        scan.rows += len(batch)
        if progress is not None:
            progress(scan.rows)
    scan.seconds = time.perf_counter() - started
    return scan


def plan_table(conn: sqlite3.Connection, table: TableMapping, options: BackfillOptions,
               progress: ScanProgress | None = None) -> TablePlan:
    rows = count_rows(conn, table.table)
    key_rate = _key_rate(conn, table, options.page_size, options.dry_run_sample_pages)
    scan = scan_conversions(conn, table, page_size=min(options.page_size, SCAN_PAGE), progress=progress)
    convert_rate = scan.rows_per_second
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
        scanned_rows=scan.rows, scan_seconds=round(scan.seconds, 3), refused=scan.refusals.rows,
        refusals=scan.refusals.to_json(), refusal_lines=scan.refusals.lines(),
    )
