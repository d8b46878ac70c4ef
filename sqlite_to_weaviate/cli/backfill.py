"""``sqlite-to-weaviate backfill``.

Exit codes: 0 when every selected table is fully enqueued (and, with ``--wait``, applied),
1 when stopped early (SIGTERM/SIGINT) or the wait timed out -- re-run to continue -- and 3
when it cannot run (bad options, capture not installed). ``--dry-run`` exits 1 when the
mapping would refuse rows (they would become dead letters), and ``--wait`` exits 1 when,
once applied, rows were refused (dead letters).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from sqlite_to_weaviate.backfill.checkpoint import set_paused
from sqlite_to_weaviate.backfill.options import BackfillOptions, BackfillReport
from sqlite_to_weaviate.settings import Settings

from .app import EXIT_OK, EXIT_PROBLEMS, command, main
from .options import finite


def _print_plan(report: BackfillReport) -> None:
    total_s = 0.0
    refused = 0
    for name, result in report.tables.items():
        plan = result.plan
        assert plan is not None
        eta = "-" if plan.estimated_seconds is None else f"{plan.estimated_seconds:.1f}s"
        total_s += plan.estimated_seconds or 0.0
        refused += plan.refused
        verdict = f", {plan.refused} would be REFUSED" if plan.refused else ""
        click.echo(f"{name} -> {plan.collection}: {plan.rows} row(s){verdict}, estimated {eta}")
        for line in plan.refusal_lines:
            click.echo(f"    refused {line}")
        for column, prop, dtype in plan.properties:
            click.echo(f"    {column:<24} -> {prop:<24} {dtype}")
        if plan.vector:
            click.echo(f"    vector from {plan.vector}")
        if plan.checkpoint:
            state = "done" if plan.checkpoint.get("done") else f"{plan.checkpoint.get('rows_enqueued')} enqueued"
            click.echo(f"    checkpoint: {state} (--restart starts over)")
    for line in refusal_advice(report):
        click.echo(line)
    click.echo(f"dry run: {sum(t.total_estimate or 0 for t in report.tables.values())} row(s) in "
               f"{len(report.tables)} table(s), {refused} would be refused; estimated {total_s:.1f}s to enqueue and "
               "convert (measured on every row; Weaviate's write time is not included); nothing was written")


def refusal_advice(report: BackfillReport) -> list[str]:
    """The mapping lines that keep the refused rows, and where to get a full suggestion."""
    snippets = [t.plan.refusals["mapping_fix"] for t in report.tables.values()
                if t.plan is not None and t.plan.refused and t.plan.refusals and t.plan.refusals.get("mapping_fix")]
    if not any(t.plan is not None and t.plan.refused for t in report.tables.values()):
        return []
    lines = []
    if snippets:
        lines.append("to keep the refused rows, add to the mapping file (--mapping):")
        lines += [f"    {line}" for snippet in snippets for line in snippet.splitlines()]
    lines.append("or run `sqlite-to-weaviate suggest-mapping mapping.toml` to write a mapping from the data")
    return lines


@command(main, "backfill")
@click.option("--table", multiple=True, help="Only this table (repeatable). Default: every mapped table.")
@click.option("--restart", is_flag=True, help="Forget the checkpoints and scan from the first key.")
@click.option("--dry-run", is_flag=True, help="Read and convert every row: counts, rows the mapping would refuse "
                 "(exit 1) and why, mapping preview, estimated time; writes nothing.")
@click.option("--page-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Keys per transaction.")
@click.option("--rows-per-second", type=finite(0, min_open=True), help="Throughput cap.")
@click.option("--max-backlog", type=click.IntRange(min=0), default=20000, show_default=True,
                 help="Pause while more outbox rows than this wait for the relay (0: no limit).")
@click.option("--memory-limit-mb", type=click.IntRange(min=1), help="Shrink pages / pause above this RSS.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Tables scanned at once.")
@click.option("--wait", is_flag=True, help="After the last page, wait until the relay has applied everything.")
@click.option("--wait-timeout", type=finite(0), help="Give up waiting after this many seconds (exit 1).")
@click.option("--pause/--resume", default=None, help="Set or clear the pause flag of running backfills and exit.")
@click.option("--pause-file", type=click.Path(dir_okay=False), help="Pause while this file exists.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def backfill_cmd(settings: Settings, table: tuple[str, ...], restart: bool, dry_run: bool, page_size: int,
                  rows_per_second: float | None, max_backlog: int, memory_limit_mb: int | None, workers: int,
                  wait: bool, wait_timeout: float | None, pause: bool | None, pause_file: str | None,
                  as_json: bool) -> None:
    """Stream existing rows into Weaviate through the outbox (resumable; safe while the app writes)."""
    from sqlite_to_weaviate.backfill.runner import backfill

    if pause is not None:
        conn = settings.open_db()
        try:
            set_paused(conn, pause)
        finally:
            conn.close()
        click.echo("backfill paused (a running backfill waits; --resume continues)" if pause else "backfill resumed")
        return
    options = BackfillOptions(
        tables=list(table) or None, restart=restart, dry_run=dry_run, page_size=page_size,
        rows_per_second=rows_per_second, max_outbox_backlog=max_backlog or None, memory_limit_mb=memory_limit_mb,
        workers=workers, wait_applied=wait, wait_timeout=wait_timeout,
        pause_file=Path(pause_file) if pause_file else None,
    )
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    report = backfill(settings, options, stop=stop)
    if as_json:
        click.echo(json.dumps(_report_json(report), indent=2, default=str))
    elif dry_run:
        _print_plan(report)
    else:
        for name, r in report.tables.items():
            state = "already done" if r.already_done else ("done" if r.done else "stopped")
            click.echo(f"{name}: {r.rows_enqueued} key(s) enqueued this run, {r.total_enqueued} in total ({state})")
        if report.applied is not None:
            click.echo("all backfilled keys applied" if report.applied else "not yet applied (wait timed out)")
        for name, n in report.refused.items():
            click.echo(f"PROBLEM: {name}: {n} row(s) refused by the mapping or Weaviate are not in Weaviate "
                       "(dead letters): `verify` groups them by column and reason with the mapping fix")
    if dry_run:
        ok = not any(t.plan is not None and t.plan.refused for t in report.tables.values())
    else:
        ok = report.done and not report.stopped and report.applied is not False and not report.refused
    sys.exit(EXIT_OK if ok else EXIT_PROBLEMS)


def _report_json(report: BackfillReport) -> dict[str, Any]:
    import dataclasses

    return {"dry_run": report.dry_run, "stopped": report.stopped, "done": report.done, "applied": report.applied,
            "seconds": round(report.seconds, 3), "rows_enqueued": report.rows_enqueued, "pauses": report.pauses,
            "tables": {k: dataclasses.asdict(v) for k, v in report.tables.items()}}
