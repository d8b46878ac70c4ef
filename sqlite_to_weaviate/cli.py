"""The ``sqlite-to-weaviate`` command.

Every command takes the same connection options (flag > ``S2W_*`` environment variable >
``--config`` file > default) and turns expected failures into one clear line on stderr
and a documented exit code, so cron jobs can alert on them:

  0  success / healthy          1  differences or problems found (status, verify)
  2  differences found and repaired (verify --repair)
  3  could not run: bad configuration, unreachable service, invalid input
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sqlite_to_weaviate.errors import S2WError

EXIT_OK, EXIT_PROBLEMS, EXIT_REPAIRED, EXIT_CANNOT_RUN = 0, 1, 2, 3

_CONNECTION_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--sqlite-url", "sqlite_path"), dict(envvar="S2W_SQLITE_URL", help="Path or sqlite:///path of the app's database.")),
    (("--weaviate-url",), dict(envvar="S2W_WEAVIATE_URL", help="e.g. http://127.0.0.1:8080?grpc_port=50051")),
    (("--api-key", "weaviate_api_key"), dict(envvar="S2W_WEAVIATE_API_KEY", help="Weaviate API key (never logged).")),
    (("--redis-url",), dict(envvar="S2W_REDIS_URL", help="e.g. redis://127.0.0.1:6379/0")),
    (("--namespace",), dict(envvar="S2W_NAMESPACE", help="Prefix of Redis keys and queues (default s2w).")),
    (("--mapping", "mapping_file"), dict(envvar="S2W_MAPPING_FILE", type=click.Path(dir_okay=False), help="Mapping TOML file.")),
    (("--collection-prefix",), dict(envvar="S2W_COLLECTION_PREFIX", help="Prefix for every collection name.")),
    (("--partitions",), dict(envvar="S2W_PARTITIONS", type=int)),
    (("--batch-size",), dict(envvar="S2W_BATCH_SIZE", type=int, help="Changes per job / rows per page.")),
    (("--lease-seconds",), dict(envvar="S2W_LEASE_SECONDS", type=float)),
    (("--job-timeout",), dict(envvar="S2W_JOB_TIMEOUT", type=float)),
    (("--max-retries",), dict(envvar="S2W_MAX_RETRIES", type=int)),
    (("--retry-delay",), dict(envvar="S2W_RETRY_DELAY", type=float)),
    (("--backoff-max",), dict(envvar="S2W_BACKOFF_MAX", type=float)),
    (("--poll-interval",), dict(envvar="S2W_POLL_INTERVAL", type=float)),
    (("--config", "config_file"), dict(envvar="S2W_CONFIG", type=click.Path(dir_okay=False), help="Settings TOML file.")),
    (("--log-level",), dict(envvar="S2W_LOG_LEVEL", default="INFO", show_default=True)),
    (("--log-file",), dict(envvar="S2W_LOG_FILE", type=click.Path(dir_okay=False))),
]
_INT_FROM_FLOAT = {"job_timeout"}
_NOT_SETTINGS = {"config_file", "log_level", "log_file"}


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options; the command receives ``settings`` (built lazily) instead."""
    for decls, kwargs in reversed(_CONNECTION_OPTIONS):
        func = click.option(*decls, default=kwargs.pop("default", None), **kwargs)(func)

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        from sqlite_to_weaviate.config_sources import build_settings
        from sqlite_to_weaviate.logs import configure_logging

        explicit = {}
        for decls, _ in _CONNECTION_OPTIONS:
            name = decls[-1] if not decls[-1].startswith("--") else decls[0][2:].replace("-", "_")
            value = kwargs.pop(name)
            if name not in _NOT_SETTINGS:
                explicit[name] = int(value) if name in _INT_FROM_FLOAT and value is not None else value
            else:
                kwargs.setdefault("_" + name, value)
        configure_logging(kwargs.pop("_log_level") or "INFO", kwargs.pop("_log_file"))
        config_file = kwargs.pop("_config_file")
        settings = build_settings(explicit, Path(config_file) if config_file else None)
        return func(settings=settings, **kwargs)

    return wrapper


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Expected failures become one line and exit code 3 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except S2WError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except Exception as exc:  # noqa: BLE001 - connection failures from client libraries
            import redis
            import weaviate.exceptions

            if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, weaviate.exceptions.WeaviateConnectionError,
                                weaviate.exceptions.WeaviateStartUpError)):
                click.echo(f"error: cannot reach a service: {type(exc).__name__}: {exc}", err=True)
                sys.exit(EXIT_CANNOT_RUN)
            raise

    return wrapper


def command(group: click.Group, name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    def decorate(func: Callable[..., Any]) -> Any:
        return group.command(name, **kwargs)(friendly_errors(connection_options(func)))

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="sqlite-to-weaviate")
def main() -> None:
    """Move a live SQLite database into Weaviate with zero downtime, and prove nothing was lost."""


@command(main, "init")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init_cmd(settings: Any, as_json: bool) -> None:
    """Phase 1: install capture triggers and create the Weaviate collections (idempotent)."""
    from sqlite_to_weaviate.initialize import initialize

    report = initialize(settings)
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


@command(main, "worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--name", help="Worker name (default: host-pid).")
def worker_cmd(settings: Any, burst: bool, name: str | None) -> None:
    """Apply jobs to Weaviate (run any number, on any host with Redis and Weaviate access)."""
    from sqlite_to_weaviate.writer.worker import run_worker

    run_worker(settings, burst=burst, name=name)


@command(main, "status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--max-lag", type=float, default=60.0, show_default=True, help="Seconds of lag that count as a problem.")
@click.option("--max-dead-letters", type=int, default=0, show_default=True)
def status_cmd(settings: Any, as_json: bool, max_lag: float, max_dead_letters: int) -> None:
    """Lag, outbox depth, in-flight jobs, dead letters, workers; exit 1 when something needs a human."""
    from sqlite_to_weaviate.writer.status import collect_status

    st = collect_status(settings, max_lag_s=max_lag, max_dead_letters=max_dead_letters)
    if as_json:
        click.echo(json.dumps(st.to_json(), indent=2, default=str))
    else:
        lag = "-" if st.oldest_unapplied_age_s is None else f"{st.oldest_unapplied_age_s:.2f}s"
        click.echo(f"checkpoint        {st.checkpoint}")
        click.echo(f"outbox depth      {st.outbox_depth}")
        click.echo(f"lag (oldest)      {lag}")
        click.echo(f"dead letters      {st.dead_letters}")
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
    from sqlite_to_weaviate.operate.commands import (
        backup_cmd, migrate_cmd, phase_cmd, ready_cmd, rollback_cmd, run_cmd, uninstall_cmd,
    )
    from sqlite_to_weaviate.verify.command import verify_cmd

    for cmd in (backfill_cmd, verify_cmd, migrate_cmd, run_cmd, backup_cmd, rollback_cmd, uninstall_cmd, ready_cmd,
                phase_cmd):
        main.add_command(cmd)


_register_subpackage_commands()
