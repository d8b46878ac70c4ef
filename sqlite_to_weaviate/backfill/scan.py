"""One table's keyset scan: page after page of keys into the outbox, each page atomic with its checkpoint.

Each page is one short ``BEGIN IMMEDIATE`` transaction that (1) copies the next ``limit``
primary keys after the cursor into the bulk lane as op ``R`` (``store.lanes.enqueue_all_keys``)
and (2) writes the table's checkpoint with the new cursor. Either both commit or neither:
after a SIGKILL the re-run resumes exactly after the last committed page — no key skipped,
no page counted twice, and a finished table is never scanned again. No read transaction
outlives a page, so WAL checkpoints are never starved.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from sqlite_to_weaviate.store.lanes import enqueue_all_keys
from sqlite_to_weaviate.store.progress import read_progress
from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.mapping import TableMapping
from sqlite_to_weaviate.mapping.model import quote_identifier

from . import checkpoint as ckpt
from .gate import Gate
from .options import BackfillOptions, TableResult
from .progress import ProgressDisplay, ProgressEvent
from .throttle import Throttle, eta_seconds, page_size_for_rate


@dataclass(frozen=True)
class Page:
    """What one committed page did."""

    rows: int
    first_after: tuple | None   # the cursor before the page (exclusive)
    last_key: tuple | None      # the cursor after it (inclusive); None when the page was empty
    last_seq: int | None
    done: bool


def count_rows(conn: sqlite3.Connection, table: str) -> int:
    """Row count in its own short read (uses the smallest index)."""
    return conn.execute(f"SELECT count(*) FROM {quote_identifier(table)}").fetchone()[0]


def take_page(conn: sqlite3.Connection, cp: ckpt.TableCheckpoint, limit: int,
              rate: float | None, total: int | None, pk: tuple[str, ...]) -> tuple[Page, ckpt.TableCheckpoint]:
    """Enqueue the next page and write the checkpoint in ONE transaction."""
    with immediate(conn):
        before = conn.total_changes
        last = enqueue_all_keys(conn, cp.table, pk, cp.last_key, limit=limit, op="R")
        rows = conn.total_changes - before
        last_seq = conn.execute("SELECT last_insert_rowid()").fetchone()[0] if rows else cp.last_seq
        done = last is None or rows < limit
        enqueued = cp.rows_enqueued + rows
        remaining = None if total is None else max(0, total - enqueued)
        new = cp.advanced(
            last_key=last if last is not None else cp.last_key, rows_enqueued=enqueued, done=done,
            last_seq=last_seq, total_estimate=total if not done else max(total or 0, enqueued),
            rows_per_second=None if rate is None else round(rate, 1),
            eta_seconds=0.0 if done else (None if eta_seconds(remaining, rate) is None
                                          else round(eta_seconds(remaining, rate) or 0.0, 1)),
        )
        ckpt.save(conn, new)
    return Page(rows, cp.last_key, last, last_seq, done), new


def scan_table(conn: sqlite3.Connection, table: TableMapping, options: BackfillOptions, gate: Gate,
               display: ProgressDisplay) -> TableResult:
    """Scan one table to its end (or until the gate's stop event); resumes from its checkpoint."""
    log = get_logger("s2w.backfill", table=table.table)
    result = TableResult(table=table.table, collection=table.collection)
    cp = ckpt.load(conn, table.table)
    if cp is not None and cp.done:
        result.already_done, result.done = True, True
        result.total_enqueued, result.total_estimate, result.last_seq = cp.rows_enqueued, cp.total_estimate, cp.last_seq
        log.info("backfill table already done", rows_enqueued=cp.rows_enqueued)
        return result
    total = count_rows(conn, table.table)
    if cp is None:
        cp = ckpt.TableCheckpoint(table=table.table, started_at=time.time(), total_estimate=total)
    else:
        result.resumed = True
        # rows already enqueued + rows still ahead of the cursor would need a second count;
        # the current table size is a good enough estimate for the bar and the ETA
        total = max(total, cp.rows_enqueued)
        log.info("backfill resuming", after_rows=cp.rows_enqueued)
    result.total_estimate = total
    throttle = Throttle(options.rows_per_second)
    page_size = options.page_size
    started = time.monotonic()
    rate: float | None = None

    def lanes() -> dict:
        now = read_progress(conn)
        return {"live_lag_s": now.live_lag_s, "queued": now.bulk.depth}

    def on_wait(reason: str) -> None:
        display.update(ProgressEvent(table.table, cp.rows_enqueued, total, rate, None, paused=reason, **lanes()))

    while gate.wait(conn, on_wait):
        page_size = gate.page_size(page_size)
        limit = page_size_for_rate(page_size, options.rows_per_second)
        page, cp = take_page(conn, cp, limit, rate, total, tuple(table.primary_key))
        result.rows_enqueued += page.rows
        elapsed = time.monotonic() - started
        rate = result.rows_enqueued / elapsed if elapsed > 0 else None
        display.update(ProgressEvent(
            table.table, cp.rows_enqueued, cp.total_estimate, rate,
            0.0 if page.done else eta_seconds(None if total is None else total - cp.rows_enqueued, rate),
            done=page.done, page_after=page.first_after, page_last=page.last_key, page_rows=page.rows,
            **lanes(),
        ))
        if page.done:
            break
        delay = throttle.delay(page.rows)
        if delay > 0 and gate.stop.wait(delay):
            break
    result.done = cp.done
    result.total_enqueued = cp.rows_enqueued
    result.last_seq = cp.last_seq
    result.seconds = time.monotonic() - started
    return result
