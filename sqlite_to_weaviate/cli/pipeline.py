"""The pipeline's own commands: ``init``, ``relay``, ``worker``, ``status`` and ``dead-letters``."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from sqlite_to_weaviate.settings import Settings

from .app import EXIT_CANNOT_RUN, EXIT_OK, EXIT_PROBLEMS, command, main
from .options import finite


@command(main, "init")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init_cmd(settings: Settings, as_json: bool) -> None:
    """Phase 1: install capture triggers and create the Weaviate collections (idempotent)."""
    from sqlite_to_weaviate.initialize import initialize
    from sqlite_to_weaviate.operate.phases import Phase, set_phase

    report = initialize(settings)  # records each collection it creates (rollback deletes only those whole)
    conn = settings.open_db()
    try:
        set_phase(conn, Phase.SCHEMA)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(report.__dict__, indent=2))
        return
    click.echo(f"capturing {len(report.captured)} table(s): {', '.join(report.captured) or '-'}")
    for table, why in report.skipped.items():
        click.echo(f"skipped {table}: {why}")
    for action in report.collection_actions:
        click.echo(action)
    for warning in report.warnings:
        click.echo(f"warning: {warning}")


def _install_stop_handlers(stop: Callable[[], None]) -> None:
    def handler(signum: int, _frame: Any) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@command(main, "relay")
@click.option("--no-watch", is_flag=True, help="Poll only (no file-system events).")
def relay_cmd(settings: Settings, no_watch: bool) -> None:
    """Replay the outbox into RQ jobs, in order, until SIGTERM/SIGINT."""
    from sqlite_to_weaviate.writer.relay import Relay

    relay = Relay(settings)
    _install_stop_handlers(relay.stop)
    try:
        relay.run(watch=not no_watch)
    finally:
        relay.close()


@command(main, "worker", needs_database=False)
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--name", help="Worker name (default: host-pid).")
@click.option("--allowed-collections", envvar="S2W_ALLOWED_COLLECTIONS", show_envvar=True,
              help="Comma-separated collections this worker may write (besides the relay's signed list).")
@click.option("--live-only", is_flag=True,
              help="Take only live jobs (app changes), never history: a reserve that keeps live lag low while "
                   "a backfill streams.")
def worker_cmd(settings: Settings, burst: bool, name: str | None, allowed_collections: str | None,
               live_only: bool) -> None:
    """Apply jobs to Weaviate (run any number, on any host with Redis and Weaviate access).

    Needs --redis-url, --weaviate-url (and --api-key), --namespace, the job secret and the
    tuning options; the database file only to read the job secret beside it (--sqlite-url
    is optional: a worker on another host is given S2W_JOB_SECRET instead)."""
    from sqlite_to_weaviate.writer.rq_worker import run_worker

    run_worker(settings, burst=burst, name=name, allowed_collections=(allowed_collections or "").split(","),
               live_only=live_only)


@command(main, "job-secret")
@click.option("--rotate", is_flag=True, help="Replace the stored secret (restart the relay and every worker after).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def job_secret_cmd(settings: Settings, rotate: bool, yes: bool) -> None:
    """Print the secret that authenticates jobs between relay and workers (give it to remote workers)."""
    from sqlite_to_weaviate.writer.job_secret import ensure_stored_job_secret, stored_job_secret

    if settings.job_secret is not None:
        click.echo("the job secret is given explicitly (S2W_JOB_SECRET / S2W_JOB_SECRET_FILE); nothing is stored",
                   err=True)
        return
    if rotate and not yes:
        click.confirm("Replace the job secret? Jobs in flight are refused until relay and workers restart",
                      abort=True)
    conn = settings.open_db(readonly=not rotate)
    try:
        secret = ensure_stored_job_secret(conn, rotate=True) if rotate else stored_job_secret(conn)
    finally:
        conn.close()
    if secret is None:
        click.echo("error: no job secret is stored yet: run `sqlite-to-weaviate init` first", err=True)
        sys.exit(EXIT_CANNOT_RUN)
    click.echo(secret.reveal())


@command(main, "status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--max-lag", type=finite(0), default=60.0, show_default=True, help="Seconds of lag that count as a problem.")
@click.option("--max-dead-letters", type=int, default=0, show_default=True)
@click.option("--max-stuck", type=finite(0), default=30.0, show_default=True,
              help="Seconds the relay may keep failing with nothing applied before it counts as stuck.")
def status_cmd(settings: Settings, as_json: bool, max_lag: float, max_dead_letters: int, max_stuck: float) -> None:
    """Lag, outbox depth, in-flight jobs, dead letters, workers; exit 1 when something needs a human."""
    from sqlite_to_weaviate.writer.status import collect_status

    st = collect_status(settings, max_lag_s=max_lag, max_dead_letters=max_dead_letters, max_stuck_s=max_stuck)
    if as_json:
        click.echo(json.dumps(st.to_json(), indent=2, default=str))
    else:
        lag = "-" if st.oldest_unapplied_age_s is None else f"{st.oldest_unapplied_age_s:.2f}s"
        if st.phase:
            click.echo(f"phase             {st.phase}")
        click.echo(f"checkpoint        {st.checkpoint} (bulk lane {st.bulk_checkpoint})")
        click.echo(f"live lag          {lag} ({st.outbox_depth} live change(s) waiting)")
        if st.bulk_backlog or st.backfill_remaining:
            eta = "-" if st.backfill_eta_s is None else f"{st.backfill_eta_s:.0f}s"
            click.echo(f"backfill          {st.backfill_remaining if st.backfill_remaining is not None else '?'} "
                       f"row(s) to go, {st.bulk_backlog} queued, ETA {eta}")
        click.echo(f"dead letters      {st.dead_letters}")
        if st.resends_pending:
            click.echo(f"re-sends owed     {st.resends_pending} (next due in {st.resends_next_due_s or 0:.0f}s)")
        click.echo(f"caught up         {'yes' if st.caught_up else 'no'}")
        relay = st.relay
        click.echo(f"relay             {'running pid ' + str(relay['pid']) + ' on ' + relay['host'] if relay else 'not running'}")
        if relay:
            click.echo(f"in-flight jobs    {len(relay['inflight'])} (pending keys {relay['pending']})")
        click.echo(f"workers           {len(st.workers)} {' '.join(st.workers)}")
        if st.queued_jobs is not None:
            click.echo(f"queued jobs       {st.queued_jobs}")
        for name, value in st.backfill.items():
            click.echo(f"backfill {name:<9}{value}")
        if st.refused:
            click.echo(f"refused (redis)   {' '.join(f'{k}={v}' for k, v in sorted(st.refused.items()))}")
        from sqlite_to_weaviate.embed.counters import summary_lines

        for line in summary_lines(st.embeddings):  # from Redis: informational
            click.echo(f"embeddings        {line}")
        if st.last_error:
            click.echo(f"last error        {st.last_error.get('error')}")
        for problem in st.problems:
            click.echo(f"PROBLEM: {problem}")
        click.echo("healthy" if st.healthy else "needs attention")
    sys.exit(EXIT_OK if st.healthy else EXIT_PROBLEMS)


@main.group("dead-letters")
def dead_letters_group() -> None:
    """Rows Weaviate or the mapping refused: list, retry after a fix, or drop."""


@command(dead_letters_group, "list")
@click.option("--table")
@click.option("--json", "as_json", is_flag=True)
def dl_list(settings: Settings, table: str | None, as_json: bool) -> None:
    from sqlite_to_weaviate.store import dead_letters

    conn = settings.open_db(readonly=True)
    try:
        letters = dead_letters.list_letters(conn, table=table)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps([d.__dict__ for d in letters], indent=2, default=str))
        return
    for d in letters:
        click.echo(f"{d.table} {d.key!r} {d.uuid} [{d.stage}, {d.attempts}x] {d.reason}")
    click.echo(f"{len(letters)} dead letter(s)")


@command(dead_letters_group, "retry")
@click.option("--table")
@click.option("--uuid", "object_id")
def dl_retry(settings: Settings, table: str | None, object_id: str | None) -> None:
    """Re-enqueue the keys through the outbox (after fixing the mapping or the data)."""
    from sqlite_to_weaviate.store import dead_letters

    conn = settings.open_db()
    try:
        count = dead_letters.retry(conn, table=table, uuid=object_id)
    finally:
        conn.close()
    click.echo(f"re-enqueued {count} key(s); they leave the list once they sync")


@command(dead_letters_group, "drop")
@click.option("--table")
@click.option("--uuid", "object_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dl_drop(settings: Settings, table: str | None, object_id: str | None, yes: bool) -> None:
    """Forget dead letters: those rows will not be in Weaviate."""
    from sqlite_to_weaviate.store import dead_letters

    if not yes:
        click.confirm("Drop the selected dead letters? Their rows stay missing from Weaviate", abort=True)
    conn = settings.open_db()
    try:
        count = dead_letters.drop(conn, table=table, uuid=object_id)
    finally:
        conn.close()
    click.echo(f"dropped {count} dead letter(s)")
