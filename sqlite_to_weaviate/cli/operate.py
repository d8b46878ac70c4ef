"""The operator surface: ``migrate``, ``run``, ``backup``, ``rollback``, ``uninstall``, ``ready``, ``phase``.

Exit codes as everywhere (:mod:`.app`): 0 ok, 1 problems (failed / not ready), 3 cannot
run. Every command that writes has ``--dry-run``; destructive ones ask unless ``--yes``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from sqlite_to_weaviate.operate.sidecar import DEFAULT_VERIFY_EVERY
from sqlite_to_weaviate.settings import Settings

from .app import EXIT_CANNOT_RUN, EXIT_OK, EXIT_PROBLEMS, command, main
from .options import finite


def _on_signals(stop: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop())


# ---------------------------------------------------------------------------- migrate
@command(main, "migrate")
@click.option("--dry-run", is_flag=True, help="Read and convert every row: tables, counts, rows the mapping would "
                 "refuse (exit 1) and why, collections, estimated time; write nothing.")
@click.option("--backup/--no-backup", default=True, show_default=True, help="Back up the database first.")
@click.option("--backup-path", type=click.Path(), help="Backup file or directory (default: next to the database).")
@click.option("--validation-sample", type=click.IntRange(min=0), default=1000, show_default=True,
                 help="Rows compared field by field during verification.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default 1).")
@click.option("--no-rollback", is_flag=True, help="Keep everything when verification fails.")
@click.option("--timeout", type=finite(0, min_open=True), default=3600.0, show_default=True, help="Seconds for backfill + drain.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.option("--search", is_flag=True, help="Also validate search (verify --search): sampled rows found by "
              "keyword and by their own vector; recall below --search-min-recall fails the migration.")
@click.option("--search-sample", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--search-min-recall", type=click.FloatRange(0, 1), default=0.9, show_default=True)
def migrate_cmd(settings: Settings, dry_run: bool, backup: bool, backup_path: str | None, validation_sample: int,
                workers: int | None, no_rollback: bool, timeout: float, as_json: bool, search: bool,
                search_sample: int, search_min_recall: float) -> None:
    """One-shot migration: backup, init, backfill, drain, verify (rollback on failure)."""
    from sqlite_to_weaviate.operate.config import MigrationConfig
    from sqlite_to_weaviate.operate.migrate import SQLiteToWeaviateMigrator

    config = MigrationConfig.from_settings(
        settings, dry_run=dry_run, backup_before_migration=backup, backup_path=backup_path,
        validation_sample_size=validation_sample, enable_parallel_processing=bool(workers and workers > 1),
        worker_count=workers or 1, rollback_on_failure=not no_rollback, timeout_s=timeout,
        search_validation_sample=search_sample if search else 0, search_min_recall=search_min_recall,
    )
    migrator = SQLiteToWeaviateMigrator(config, configure_logs=False)
    _on_signals(migrator.stop)
    result = migrator.migrate()
    if result.cannot_run:
        for error in result.errors:
            click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_CANNOT_RUN)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        for line in result.summary():
            click.echo(line)
    sys.exit(EXIT_OK if result.success else EXIT_PROBLEMS)




# ---------------------------------------------------------------------------- run
@command(main, "run")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes.")
@click.option("--live-workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="More worker processes that take only live jobs, so app changes never wait behind history.")
@click.option("--no-backfill", is_flag=True, help="Only replay live changes.")
@click.option("--no-init", is_flag=True, help="Do not (re)install capture / create collections at start.")
@click.option("--metrics-port", type=click.IntRange(min=0, max=65535), default=9464, show_default=True,
                 envvar="S2W_METRICS_PORT", help="Port of /metrics and /healthz (0: any free port).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, envvar="S2W_METRICS_HOST")
@click.option("--no-metrics", is_flag=True, help="No HTTP endpoint.")
@click.option("--shutdown-grace", type=finite(0), default=10.0, show_default=True,
                 help="Seconds the relay waits for in-flight jobs on SIGTERM.")
@click.option("--no-watch", is_flag=True, help="Poll only (no file-system events).")
@click.option("--rows-per-second", type=finite(0, min_open=True), help="Backfill throughput cap.")
@click.option("--log-dir", type=click.Path(file_okay=False), help="Directory for worker logs.")
@click.option("--verify-every", type=finite(0), default=DEFAULT_VERIFY_EVERY, show_default=True,
                 help="Verify once the backfill is applied, then every N seconds; clean + gate open = phase 4 "
                      "(0: never).")
@click.option("--validation-sample", type=click.IntRange(min=0), default=100, show_default=True,
                 help="Rows compared field by field by each periodic verify.")
@click.option("--verify-repair/--verify-report-only", default=True, show_default=True,
                 help="Repair what the periodic verify finds (through the outbox), or only report it.")
@click.option("--dry-run", is_flag=True, help="Check the stores, read and convert every row, print the plan and "
                 "the rows the mapping would refuse (exit 1); start nothing, write nothing.")
@click.option("--verify-search", is_flag=True, help="Each periodic verify also checks search (verify --search, "
              "100 rows per table, recall >= 0.9) and repairs the rows it cannot find.")
def run_cmd(settings: Settings, workers: int, live_workers: int, no_backfill: bool, no_init: bool,
            metrics_port: int | None, metrics_host: str, no_metrics: bool, shutdown_grace: float, no_watch: bool,
            rows_per_second: float | None, log_dir: str | None, verify_every: float, validation_sample: int,
            verify_repair: bool, dry_run: bool, verify_search: bool) -> None:
    """All-in-one sidecar: relay + supervised workers + backfill until done + its own verifier +
    /metrics and /healthz."""
    from sqlite_to_weaviate.backfill import BackfillOptions

    if dry_run:
        _print_plan(settings, workers)
        return

    from sqlite_to_weaviate.operate.sidecar import Sidecar, SidecarOptions

    options = SidecarOptions(
        workers=workers, live_workers=live_workers, init=not no_init, backfill=not no_backfill,
        backfill_options=BackfillOptions(rows_per_second=rows_per_second),
        metrics_host=metrics_host, metrics_port=None if no_metrics else metrics_port,
        shutdown_grace=shutdown_grace, watch=not no_watch, log_dir=Path(log_dir) if log_dir else None,
        verify_every=verify_every, verify_sample=validation_sample, verify_repair=verify_repair,
        verify_search=verify_search,
    )
    sidecar = Sidecar(settings, options)
    _on_signals(sidecar.stop)
    sys.exit(sidecar.run())




def _print_plan(settings: Settings, workers: int) -> None:
    """What ``run`` would do: the same read-only preflight and plan as ``migrate --dry-run``."""
    from sqlite_to_weaviate.operate.config import MigrationConfig
    from sqlite_to_weaviate.operate.migrate import SQLiteToWeaviateMigrator

    config = MigrationConfig.from_settings(settings, dry_run=True, backup_before_migration=False,
                                           enable_parallel_processing=workers > 1, worker_count=workers)
    result = SQLiteToWeaviateMigrator(config, configure_logs=False).migrate()
    if result.cannot_run:
        for error in result.errors:
            click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_CANNOT_RUN)
    for line in result.summary():
        click.echo(line)
    sys.exit(EXIT_OK if result.success else EXIT_PROBLEMS)  # rows the mapping would refuse: 1


# ---------------------------------------------------------------------------- backup
@command(main, "backup")
@click.option("--to", type=click.Path(), help="Backup file or existing directory (default: next to the database).")
@click.option("--dry-run", is_flag=True)
def backup_cmd(settings: Settings, to: str | None, dry_run: bool) -> None:
    """Consistent online copy of the database (safe while the app writes), integrity-checked."""
    from sqlite_to_weaviate.operate.backup import backup_database, default_backup_path

    if dry_run:
        target = Path(to) if to else None
        if target is None or target.is_dir():
            target = default_backup_path(settings.sqlite_path, target)
        click.echo(f"dry run: would copy {settings.sqlite_path} to {target}; nothing was written")
        return
    result = backup_database(settings.sqlite_path, to)
    click.echo(f"backup written: {result.path} ({result.bytes} bytes, {result.seconds:.2f}s, integrity ok)")




# ---------------------------------------------------------------------------- rollback
@command(main, "rollback")
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
                 help="Roll back even after `uninstall` (phase 5), deleting objects edited in Weaviate since cutover.")
def rollback_cmd(settings: Settings, dry_run: bool, yes: bool, force: bool) -> None:
    """Remove what the migration created: collections (or its objects), Redis keys, capture. App data stays."""
    from sqlite_to_weaviate.operate.rollback import rollback

    if not dry_run and not yes:
        preview = rollback(settings, dry_run=True, force=force)
        for line in preview.lines():
            click.echo(line)
        click.confirm("Roll back the migration as listed above?", abort=True)
    report = rollback(settings, dry_run=dry_run, force=force)
    for line in report.lines():
        click.echo(line)
    click.echo("dry run: nothing was changed" if dry_run else "rolled back")




# ---------------------------------------------------------------------------- uninstall
@command(main, "uninstall")
@click.option("--dry-run", is_flag=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Even with unapplied changes in the outbox.")
def uninstall_cmd(settings: Settings, dry_run: bool, yes: bool, force: bool) -> None:
    """Phase 5 cleanup after cutover: drop capture triggers and tool tables (Weaviate is kept)."""
    from sqlite_to_weaviate.operate.cleanup import plan_uninstall, uninstall

    plan = plan_uninstall(settings)
    for line in plan.lines():
        click.echo(line)
    if plan.pending and not force:
        click.echo(f"error: {plan.pending} captured change(s) are not applied yet; drain first or pass --force",
                   err=True)
        sys.exit(EXIT_PROBLEMS)
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    if not yes:
        click.confirm("Drop the capture triggers and tool tables? Later app writes will no longer reach Weaviate",
                      abort=True)
    uninstall(settings)
    click.echo("capture removed (phase 5 done); Weaviate data is kept")




# ---------------------------------------------------------------------------- phase / ready
@command(main, "ready")
@click.option("--max-verify-age", type=finite(0), default=3600.0, show_default=True,
                 help="A verify older than this many seconds does not count.")
@click.option("--json", "as_json", is_flag=True)
def ready_cmd(settings: Settings, max_verify_age: float, as_json: bool) -> None:
    """Cutover gate: yes/no and why (lag 0, outbox drained, backfill done, recent clean verify, no dead letters)."""
    from sqlite_to_weaviate.operate.phases import readiness

    r = readiness(settings, max_verify_age_s=max_verify_age)
    if as_json:
        click.echo(json.dumps(r.to_json(), indent=2, default=str))
    else:
        click.echo(f"phase {int(r.phase)}: {r.phase.label}")
        for name, ok in r.checks.items():
            click.echo(f"  [{'x' if ok else ' '}] {name.replace('_', ' ')}")
        click.echo("READY for cutover: yes" if r.ready else "READY for cutover: no")
        for reason in r.reasons:
            click.echo(f"  - {reason}")
    sys.exit(EXIT_OK if r.ready else EXIT_PROBLEMS)




@command(main, "phase")
@click.option("--json", "as_json", is_flag=True)
def phase_cmd(settings: Settings, as_json: bool) -> None:
    """The migration phase recorded in the database (1 schema .. 5 cleanup)."""
    from sqlite_to_weaviate.operate.phases import get_phase

    conn = settings.open_db(readonly=True)
    try:
        phase = get_phase(conn)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps({"number": int(phase), "name": phase.label}))
    else:
        click.echo(f"phase {int(phase)}: {phase.label}")
