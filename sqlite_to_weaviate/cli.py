"""The ``sqlite-to-weaviate`` command.

Every command takes the same connection options (flag > ``S2W_*`` environment variable >
``--config`` file > default) and turns expected failures into one clear line on stderr
and a documented exit code, so cron jobs can alert on them:

  0  success / healthy          1  differences or problems found (status, verify)
  2  differences found and repaired (verify --repair)
  3  could not run: bad configuration or usage, unreachable service, invalid input, any error
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from sqlite_to_weaviate.cli_support import (
    EXIT_OK, EXIT_PROBLEMS, Group, connection_options, finite, friendly_errors,
)


def command(group: click.Group, name: str, *, needs_database: bool = True,
            **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    def decorate(func: Callable[..., Any]) -> Any:
        return group.command(name, **kwargs)(friendly_errors(connection_options(func, needs_database=needs_database)))

    return decorate


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="sqlite-to-weaviate")
def main() -> None:
    """Move a live SQLite database into Weaviate with zero downtime, and prove nothing was lost."""


@command(main, "init")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init_cmd(settings: Any, as_json: bool) -> None:
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
def relay_cmd(settings: Any, no_watch: bool) -> None:
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
def worker_cmd(settings: Any, burst: bool, name: str | None) -> None:
    """Apply jobs to Weaviate (run any number, on any host with Redis and Weaviate access).

    Needs only --redis-url, --weaviate-url (and --api-key), --namespace and the tuning
    options; never the database file (--sqlite-url is accepted and ignored)."""
    from sqlite_to_weaviate.writer.worker import run_worker

    run_worker(settings, burst=burst, name=name)


@command(main, "status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--max-lag", type=finite(0), default=60.0, show_default=True, help="Seconds of lag that count as a problem.")
@click.option("--max-dead-letters", type=int, default=0, show_default=True)
def status_cmd(settings: Any, as_json: bool, max_lag: float, max_dead_letters: int) -> None:
    """Lag, outbox depth, in-flight jobs, dead letters, workers; exit 1 when something needs a human."""
    from sqlite_to_weaviate.writer.status import collect_status

    st = collect_status(settings, max_lag_s=max_lag, max_dead_letters=max_dead_letters)
    if as_json:
        click.echo(json.dumps(st.to_json(), indent=2, default=str))
    else:
        lag = "-" if st.oldest_unapplied_age_s is None else f"{st.oldest_unapplied_age_s:.2f}s"
        if st.phase:
            click.echo(f"phase             {st.phase}")
        click.echo(f"checkpoint        {st.checkpoint}")
        click.echo(f"outbox depth      {st.outbox_depth}")
        click.echo(f"lag (oldest)      {lag}")
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
def dl_list(settings: Any, table: str | None, as_json: bool) -> None:
    from sqlite_to_weaviate.writer import dead_letters

    conn = settings.open_db()
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
def dl_retry(settings: Any, table: str | None, object_id: str | None) -> None:
    """Re-enqueue the keys through the outbox (after fixing the mapping or the data)."""
    from sqlite_to_weaviate.writer import dead_letters

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
def dl_drop(settings: Any, table: str | None, object_id: str | None, yes: bool) -> None:
    """Forget dead letters: those rows will not be in Weaviate."""
    from sqlite_to_weaviate.writer import dead_letters

    if not yes:
        click.confirm("Drop the selected dead letters? Their rows stay missing from Weaviate", abort=True)
    conn = settings.open_db()
    try:
        count = dead_letters.drop(conn, table=table, uuid=object_id)
    finally:
        conn.close()
    click.echo(f"dropped {count} dead letter(s)")


def _register_subpackage_commands() -> None:
    """Commands that live beside their subpackage (imported last: they import this module)."""
    from sqlite_to_weaviate.backfill.command import backfill_cmd
    from sqlite_to_weaviate.mapping.suggest_command import suggest_mapping_cmd
    from sqlite_to_weaviate.operate.commands import (
        backup_cmd, migrate_cmd, phase_cmd, ready_cmd, rollback_cmd, run_cmd, uninstall_cmd,
    )
    from sqlite_to_weaviate.verify.command import verify_cmd

    for cmd in (backfill_cmd, verify_cmd, migrate_cmd, run_cmd, backup_cmd, rollback_cmd, uninstall_cmd, ready_cmd,
                phase_cmd, suggest_mapping_cmd):
        main.add_command(cmd)


_register_subpackage_commands()
