"""``sqlite-to-weaviate verify``.

Exit codes (docs/verify.md): 0 clean, 1 differences found (not repaired) or rows refused
(unless ``--allow-refused``), 2 differences found and all repaired, 3 could not run or
could not conclude. The JSON report is written to ``--report FILE`` whatever the outcome,
so a cron job always has the evidence.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.verify.report import VerifyReport
from sqlite_to_weaviate.verify.run import Progress, verify_or_error

from .app import command, main
from .options import finite


def _progress_bar(enabled: bool) -> tuple[Progress | None, Any]:
    """A tqdm bar on a terminal (rows + objects scanned per table); nothing otherwise."""
    if not enabled:
        return None, None
    from tqdm import tqdm

    state: dict[str, Any] = {"bar": None, "table": None}

    def progress(table: str, done: int, total: int) -> None:
        if state["table"] != table:
            if state["bar"] is not None:
                state["bar"].close()
            state["bar"] = tqdm(total=total, desc=table, unit="rec", leave=False, file=sys.stderr)
            state["table"] = table
        bar = state["bar"]
        bar.total = max(total, done)
        bar.update(done - bar.n)

    return progress, state


def write_report(report: VerifyReport, path: str) -> None:
    """Write the JSON report atomically (a cron reader never sees half a file)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(report.dumps() + "\n")
    tmp.replace(target)


@command(main, "verify")
@click.option("--table", multiple=True, help="Only this table (repeatable). Default: every mapped table.")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Rows per table compared field by field (properties, blobs, vectors, references).")
@click.option("--repair", is_flag=True, help="Re-enqueue differing keys through the outbox, delete extras, re-verify.")
@click.option("--no-live-recheck", is_flag=True, help="Report scan differences as is (only when nothing writes).")
@click.option("--recheck-timeout", type=finite(0), default=60.0, show_default=True,
                 help="Seconds to wait for in-flight changes to settle.")
@click.option("--repair-timeout", type=finite(0), default=300.0, show_default=True,
                 help="Seconds to wait for the pipeline to apply repairs.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), help="Also write the JSON report here.")
@click.option("--progress/--no-progress", "progress_flag", default=None, help="Progress bar (default: on a TTY).")
@click.option("--allow-refused", is_flag=True,
                 help="Accept rows the mapping or Weaviate refused (dead letters): still listed, exit 0 if nothing "
                      "else differs. The phase still does not advance to 4 while rows are refused.")
@click.option("--search", is_flag=True, help="Also check search: sampled rows must be found by a keyword (BM25) "
              "query of their distinctive words, and first by a near-vector query with their own vector; "
              "recall@k per collection, exit 1 below --search-min-recall.")
@click.option("--search-sample", type=click.IntRange(min=1), default=100, show_default=True,
              help="Rows per table checked by --search.")
@click.option("--search-k", type=click.IntRange(min=1, max=100), default=10, show_default=True,
              help="k of recall@k for the keyword check.")
@click.option("--search-min-recall", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Lowest acceptable recall per check (keyword, each vector).")
def verify_cmd(settings: Settings, table: tuple[str, ...], sample: int, repair: bool, no_live_recheck: bool,
                recheck_timeout: float, repair_timeout: float, as_json: bool, report_file: str | None,
                progress_flag: bool | None, allow_refused: bool, search: bool, search_sample: int, search_k: int,
                search_min_recall: float) -> None:
    """Compare every row with its Weaviate object by content hash (streamed); --repair fixes differences;
    --search checks that sampled rows are found by keyword and by their own vector."""
    from sqlite_to_weaviate.verify.search import SearchOptions

    show = sys.stderr.isatty() if progress_flag is None else progress_flag
    progress, state = _progress_bar(show and not as_json)
    try:
        report = verify_or_error(
            settings, tables=list(table) or None, sample=sample, repair=repair, live_recheck=not no_live_recheck,
            recheck_timeout=recheck_timeout, repair_timeout=repair_timeout, progress=progress,
            allow_refused=allow_refused,
            search=SearchOptions(search_sample, search_k, search_min_recall) if search else None,
        )
    finally:
        if state and state["bar"] is not None:
            state["bar"].close()
    if not report.error:
        from sqlite_to_weaviate.operate.verification import record_report

        record_report(settings, report, sample)
    if report_file:
        write_report(report, report_file)
    if as_json:
        click.echo(report.dumps())
    else:
        click.echo(report.render())
    if report.error:
        click.echo(f"error: {report.error}", err=True)
    sys.exit(report.exit_code())
