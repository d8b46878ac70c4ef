"""``backfill()``: select tables, scan them (one thread per table up to ``workers``), optionally wait.

No global state: everything a run needs is built here and passed down. Each scan thread
opens its own SQLite connection (SQLite serialises the short page writes; several threads
only help when tables are many and pages are throttled or waiting on locks).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.mapping import TableMapping
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.store import dead_letters
from sqlite_to_weaviate.store.progress import read_progress

from . import checkpoint as ckpt
from .dry_run import plan_table
from .gate import Gate
from .options import BackfillOptions, BackfillReport, TableResult
from .progress import ProgressDisplay, ProgressEvent
from .scan import count_rows, scan_table
from .tables import check_captured, select_tables
from .throttle import eta_seconds


def backfill(
    settings: Settings,
    options: BackfillOptions | None = None,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    display: ProgressDisplay | None = None,
) -> BackfillReport:
    """Stream every selected table's keys through the outbox; see docs/backfill.md.

    ``stop`` ends the run after the current page (the checkpoint is always consistent).
    ``progress`` receives a :class:`ProgressEvent` after every committed page and while
    waiting; it runs in the scan thread, right after the page's commit.
    """
    options = options or BackfillOptions()
    if options.dry_run:
        return _dry_run(settings, options, progress=progress, display=display)
    started = time.monotonic()
    stop = stop if stop is not None else threading.Event()
    log = get_logger("s2w.backfill")
    conn = settings.open_db()
    try:
        tables = select_tables(settings.load_mapping(conn), options.tables)
        check_captured(conn, tables)
        if options.restart:
            with immediate(conn):
                for t in tables:
                    ckpt.clear(conn, t.table)
            log.info("backfill checkpoints cleared", tables=[t.table for t in tables])
    finally:
        conn.close()
    own_display = display is None
    display = display or ProgressDisplay(callback=progress, log_interval=options.progress_interval)
    gate = Gate(max_backlog=options.max_outbox_backlog, memory_limit_mb=options.memory_limit_mb,
                pause_file=options.pause_file, poll_interval=options.poll_interval, stop=threading.Event())
    report = BackfillReport()
    forwarder = threading.Thread(target=_forward, args=(stop, gate.stop), daemon=True)
    forwarder.start()
    log.info("backfill started", tables=[t.table for t in tables], workers=options.workers,
             page_size=options.page_size, rows_per_second=options.rows_per_second)
    try:
        with ThreadPoolExecutor(max_workers=min(options.workers, max(1, len(tables))),
                                thread_name_prefix="s2w-backfill") as pool:
            futures = {pool.submit(_scan_one, settings, t, options, gate, display): t for t in tables}
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in finished):
                gate.stop.set()  # let the other scans stop at their next page
            for future, table in futures.items():
                report.tables[table.table] = future.result()
        report.stopped = stop.is_set()
        if options.wait_applied and not report.stopped and report.done:
            report.applied = wait_applied(settings, report.last_seq, stop=stop, timeout=options.wait_timeout,
                                          poll=options.poll_interval)
            if report.applied:
                report.refused = _refused(settings, [t.table for t in tables])
    finally:
        gate.stop.set()
        if own_display:
            display.close()
    report.pauses = dict(gate.waited)
    report.seconds = time.monotonic() - started
    log.info("backfill finished" if report.done else "backfill stopped", rows_enqueued=report.rows_enqueued,
             seconds=round(report.seconds, 2), last_seq=report.last_seq, applied=report.applied)
    return report


def _forward(source: threading.Event, target: threading.Event) -> None:
    """Propagate the caller's stop to the run's internal event (which errors also set)."""
    while not target.is_set():
        if source.wait(0.2):
            target.set()


def _scan_one(settings: Settings, table: TableMapping, options: BackfillOptions, gate: Gate,
              display: ProgressDisplay) -> TableResult:
    conn = settings.open_db()
    try:
        return scan_table(conn, table, options, gate, display)
    finally:
        conn.close()


def wait_applied(settings: Settings, seq: int | None, *, stop: threading.Event | None = None,
                 timeout: float | None = None, poll: float = 0.5) -> bool:
    """Wait until the relay's bulk-lane checkpoint reaches ``seq`` (every backfilled key applied)."""
    if seq is None:
        return True
    log = get_logger("s2w.backfill")
    deadline = None if timeout is None else time.monotonic() + timeout
    conn = settings.open_db(readonly=True)
    last_log = 0.0
    try:
        while True:
            checkpoint = ckpt.bulk_checkpoint(conn)
            if checkpoint >= seq:
                return True
            now = time.monotonic()
            if now - last_log > 5:
                last_log = now
                lanes = read_progress(conn)
                log.info("waiting for the relay to apply the backfill", bulk_checkpoint=checkpoint, target_seq=seq,
                         queued=lanes.bulk.depth, live_lag_s=lanes.live_lag_s)
            if (deadline is not None and now >= deadline) or (stop is not None and stop.wait(poll)):
                return False
            if stop is None:
                time.sleep(poll)
    finally:
        conn.close()


def _refused(settings: Settings, tables: list[str]) -> dict[str, int]:
    """Dead letters per table: rows the mapping or Weaviate refused, so not in Weaviate."""
    conn = settings.open_db(readonly=True)
    try:
        return dead_letters.count_by_table(conn, tables)
    finally:
        conn.close()


def _dry_run(settings: Settings, options: BackfillOptions, *, progress: Callable[[ProgressEvent], None] | None = None,
             display: ProgressDisplay | None = None) -> BackfillReport:
    """Read and convert every row of every selected table (read-only), with a progress bar on a TTY."""
    started = time.monotonic()
    conn = settings.open_db(readonly=True)
    report = BackfillReport(dry_run=True)
    own_display = display is None
    display = display or ProgressDisplay(callback=progress, log_interval=options.progress_interval, activity="dry run")
    try:
        for t in select_tables(settings.load_mapping(conn), options.tables):
            total = count_rows(conn, t.table)
            t0 = time.monotonic()

            def tick(done: int, table: str = t.table, total: int = total, t0: float = t0) -> None:
                elapsed = time.monotonic() - t0
                rate = done / elapsed if elapsed > 0 else None
                display.update(ProgressEvent(table, done, max(total, done), rate,
                                             eta_seconds(max(0, total - done), rate)))

            plan = plan_table(conn, t, options, progress=tick)
            display.update(ProgressEvent(t.table, plan.scanned_rows, plan.scanned_rows, plan.convert_rows_per_second,
                                         0.0, done=True))
            report.tables[t.table] = TableResult(table=t.table, collection=t.collection,
                                                 total_estimate=plan.rows, plan=plan)
    finally:
        conn.close()
        if own_display:
            display.close()
    report.seconds = time.monotonic() - started
    return report
