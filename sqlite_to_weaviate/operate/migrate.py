"""The one-shot migration facade (the original design's Python API) built on the pipeline.

``migrate()`` = preflight (read-only) -> backup -> phase 1 (capture + collections) ->
relay + workers -> phase 2 (backfill through the outbox, applied) -> drained -> phase 3 ->
verify -> phase 4, or rollback when verification fails and ``rollback_on_failure`` is set.
The app may keep writing throughout: capture is installed first, so every change after
that commit reaches Weaviate through the same ordered path as the backfill.

Every step is idempotent and checkpointed in SQLite, so running ``migrate`` again after a
crash resumes where it stopped (finished backfill tables are skipped).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.logs import configure_logging, get_logger
from sqlite_to_weaviate.settings import Settings

from .config import MigrationConfig, create_migration_config
from .phases import Phase, record_verification, set_phase
from .preflight import preflight

__all__ = ["MigrationConfig", "MigrationHooks", "MigrationResult", "SQLiteToWeaviateMigrator",
           "create_migration_config", "run_migration"]


@dataclass
class MigrationHooks:
    """Callbacks at phase boundaries (operators: notifications; tests: fault injection)."""

    after_drain: Callable[[Settings], None] | None = None
    before_verify: Callable[[Settings], None] | None = None


@dataclass
class MigrationResult:
    success: bool = False
    migrated_records: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)         # table/view not migrated -> why
    collections: dict[str, int] = field(default_factory=dict)     # collection -> objects in Weaviate
    timings: dict[str, float] = field(default_factory=dict)       # phase -> seconds
    verification: dict[str, Any] | None = None
    backup_path: str | None = None
    rolled_back: bool = False
    rollback: list[str] = field(default_factory=list)
    dry_run: bool = False
    plan: dict[str, Any] | None = None
    phase: int = 0
    cannot_run: bool = False        # failed before writing anything (bad input, unreachable store)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> list[str]:
        if self.dry_run and self.plan is not None:
            lines = [f"{t} -> {p['collection']}: {p['rows']} row(s)"
                     f"{' (collection exists)' if p['collection_exists'] else ''}"
                     for t, p in self.plan["tables"].items()]
            lines += [f"skipped {t}: {why}" for t, why in self.plan.get("skipped", {}).items()]
            lines.append(f"dry run: would back up the database: {'yes' if self.plan['backup'] else 'no'}; "
                         f"install capture on {len(self.plan['tables'])} table(s); create "
                         f"{len(self.plan['collections_to_create'])} collection(s); backfill {self.plan['rows']} row(s) "
                         f"with {self.plan['workers']} worker(s), estimated {self.plan['estimated_seconds']:.1f}s; "
                         "nothing was written")
            return lines
        lines = [f"{name}: {count} object(s)" for name, count in self.collections.items()]
        lines += [f"skipped {t}: {why}" for t, why in self.skipped.items()]
        if self.backup_path:
            lines.append(f"backup: {self.backup_path}")
        if self.verification is not None:
            v = self.verification
            lines.append(f"verification ({v.get('verifier')}): "
                         + ("clean" if v.get("clean") else f"{v.get('differences')} difference(s)"))
        lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"error: {e}" for e in self.errors]
        if self.rolled_back:
            lines.append("ROLLED BACK: the migration's collections, Redis keys and capture objects were removed "
                         "(the SQLite data was not touched)")
            lines += [f"  {line}" for line in self.rollback]
        lines.append(f"migration {'succeeded' if self.success else 'FAILED'}: {self.migrated_records} record(s) in "
                     f"Weaviate, phase {self.phase} ({Phase(self.phase).label})")
        return lines


class MigrationFailed(S2WError):
    """A step after preflight did not complete."""


class SQLiteToWeaviateMigrator:
    """``SQLiteToWeaviateMigrator(config).migrate()`` -> :class:`MigrationResult`."""

    def __init__(self, config: MigrationConfig, *, hooks: MigrationHooks | None = None,
                 configure_logs: bool = True) -> None:
        self.config = config
        self.hooks = hooks or MigrationHooks()
        self.settings = config.to_settings()
        self._stop = threading.Event()
        if configure_logs:
            configure_logging(config.log_level, config.log_file)
        self.log = get_logger("s2w.migrate")

    def stop(self) -> None:
        """Ask a running migration to stop after the current backfill page (signal-safe)."""
        self._stop.set()

    def migrate(self) -> MigrationResult:
        result = MigrationResult(dry_run=self.config.dry_run)
        started = time.monotonic()
        try:
            report = self._timed(result, "preflight", lambda: preflight(self.settings))
        except S2WError as exc:
            result.errors.append(str(exc))
            result.cannot_run = True
            self.log.debug("cannot run", error=str(exc))  # the caller prints the one line
            return result
        if not self.config.dry_run:
            try:
                self._check_no_relay()
            except S2WError as exc:
                result.errors.append(str(exc))
                result.cannot_run = True
                return result
        if self.config.dry_run:
            result.plan = self._plan(report)
            result.success = True
            result.timings["total"] = time.monotonic() - started
            return result
        try:
            self._run(result)
        except Exception as exc:  # noqa: BLE001 - reported in the result (and rolled back if asked)
            message = str(exc) if isinstance(exc, S2WError) else f"{type(exc).__name__}: {exc}"
            result.errors.append(message)
            self.log.error("migration failed", error=message)
        if not result.success and self.config.rollback_on_failure and result.phase >= Phase.SCHEMA:
            self._rollback(result)
        result.timings["total"] = time.monotonic() - started
        self.log.info("migration finished", success=result.success, records=result.migrated_records,
                      rolled_back=result.rolled_back)
        return result

    # ------------------------------------------------------------------ steps
    def _timed(self, result: MigrationResult, name: str, func: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        try:
            return func()
        finally:
            result.timings[name] = round(time.monotonic() - t0, 3)

    def _check_no_relay(self) -> None:
        """A relay (``run``/``relay``) already serving this database would race ours: refuse up front."""
        from .preflight import ensure_no_relay

        ensure_no_relay(self.settings, hint="stop `run`/`relay` before a one-shot migrate")

    def _plan(self, report: Any) -> dict[str, Any]:
        from sqlite_to_weaviate.backfill import BackfillOptions, backfill

        plan = backfill(self.settings, BackfillOptions(dry_run=True, memory_limit_mb=self.config.memory_limit_mb))
        tables = {}
        for name, t in plan.tables.items():
            tables[name] = {"collection": t.collection, "rows": t.total_estimate or 0,
                            "collection_exists": t.collection in report.existing_collections,
                            "estimated_seconds": t.plan.estimated_seconds if t.plan else None}
        return {
            "tables": tables, "skipped": report.skipped, "rows": sum(t["rows"] for t in tables.values()),
            "collections_to_create": sorted(t["collection"] for t in tables.values() if not t["collection_exists"]),
            "workers": self.config.workers, "backup": self.config.backup_before_migration,
            "estimated_seconds": sum(t["estimated_seconds"] or 0.0 for t in tables.values()),
        }

    def _set_phase(self, result: MigrationResult, phase: Phase) -> None:
        conn = self.settings.open_db()
        try:
            result.phase = int(set_phase(conn, phase))
        finally:
            conn.close()
        self.log.info("phase", number=int(phase), name=phase.label)

    def _run(self, result: MigrationResult) -> None:
        from sqlite_to_weaviate.writer.relay import Relay

        from .backup import backup_database
        from .ownership import initialize_recorded
        from .workers import WorkerPool

        if self.config.backup_before_migration:
            backup = self._timed(result, "backup",
                                 lambda: backup_database(self.settings.sqlite_path, self.config.backup_path))
            result.backup_path = str(backup.path)
        init = self._timed(result, "schema", lambda: initialize_recorded(self.settings))
        result.skipped = dict(init.skipped)
        result.phase = int(Phase.SCHEMA)
        self._set_phase(result, Phase.SCHEMA)
        pool = WorkerPool(self.settings, self.config.workers).start()
        relay = Relay(self.settings)
        relay_thread = threading.Thread(target=relay.run, kwargs={"watch": True}, name="s2w-relay", daemon=True)
        supervisor = threading.Thread(target=pool.supervise, args=(self._stop,), name="s2w-supervisor", daemon=True)
        relay_thread.start()
        supervisor.start()
        try:
            self._set_phase(result, Phase.BACKFILL)
            self._timed(result, "backfill", lambda: self._backfill())
            self._timed(result, "drain", lambda: self._wait_caught_up(relay, relay_thread))
            self._set_phase(result, Phase.LIVE)
            if self.hooks.after_drain:
                self.hooks.after_drain(self.settings)
            result.collections = self._counts()
            result.migrated_records = sum(result.collections.values())
            if self.hooks.before_verify:
                self.hooks.before_verify(self.settings)
            summary = self._timed(result, "verify", lambda: self._verify(result))
            result.verification = summary.to_json()
            if summary.clean:
                self._set_phase(result, Phase.VERIFIED)
                result.success = True
            else:
                result.errors.append(f"verification failed: {summary.differences} difference(s) between SQLite "
                                     f"and Weaviate ({', '.join(summary.examples[:3])})")
        finally:
            self._stop.set()
            relay.stop()
            relay_thread.join(timeout=60)
            relay.close()
            pool.stop()

    def _backfill(self) -> None:
        from sqlite_to_weaviate.backfill import BackfillOptions, backfill

        options = BackfillOptions(memory_limit_mb=self.config.memory_limit_mb, wait_applied=True,
                                  wait_timeout=self.config.timeout_s, page_size=max(self.config.batch_size, 1000))
        report = backfill(self.settings, options, stop=self._stop)
        if report.stopped or not report.done:
            raise MigrationFailed("backfill stopped before it finished; run migrate again to resume")
        if not report.applied:
            raise MigrationFailed(f"backfill not applied within {self.config.timeout_s:.0f}s "
                                  "(are workers running and Weaviate reachable? see `status`)")

    def _wait_caught_up(self, relay: Any, thread: threading.Thread) -> None:
        """Until every captured change is acknowledged (the app may still be writing)."""
        deadline = time.monotonic() + self.config.timeout_s
        conn = self.settings.open_db(readonly=True)
        try:
            while time.monotonic() < deadline:
                if not thread.is_alive():
                    raise MigrationFailed("the relay stopped unexpectedly (see the log)")
                max_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM _s2w_outbox").fetchone()[0]
                row = conn.execute("SELECT value FROM _s2w_state WHERE key='relay.checkpoint'").fetchone()
                if (max_seq == 0 or (row is not None and int(row[0]) >= max_seq)) and relay.idle:
                    return
                time.sleep(0.1)
        finally:
            conn.close()
        raise MigrationFailed(f"changes still not applied after {self.config.timeout_s:.0f}s; see `status`")

    def _counts(self) -> dict[str, int]:
        conn = self.settings.open_db(readonly=True)
        try:
            names = [t.collection for t in self.settings.load_mapping(conn).collections_in_order()]
        finally:
            conn.close()
        client = self.settings.connect_weaviate()
        try:
            out = {}
            for name in names:
                collection = client.collections.use(name)
                if collection.config.get().multi_tenancy_config.enabled:
                    out[name] = sum(collection.with_tenant(t).aggregate.over_all(total_count=True).total_count or 0
                                    for t in collection.tenants.get())
                else:
                    out[name] = collection.aggregate.over_all(total_count=True).total_count or 0
            return out
        finally:
            client.close()

    def _verify(self, result: MigrationResult):  # -> VerificationSummary
        """Verify every row by content hash, and ``validation_sample_size`` rows field by field."""
        from .verification import run_verification

        summary = run_verification(self.settings, sample=self.config.validation_sample_size)
        conn = self.settings.open_db()
        try:
            record_verification(conn, summary.to_json())
        finally:
            conn.close()
        return summary

    def _rollback(self, result: MigrationResult) -> None:
        from .rollback import rollback

        self.log.warning("migration failed: rolling back (rollback_on_failure)")
        try:
            report = self._timed(result, "rollback", lambda: rollback(self.settings))
        except Exception as exc:  # noqa: BLE001 - say so; the operator can run `rollback` again
            result.errors.append(f"rollback failed: {exc}; run `sqlite-to-weaviate rollback` again")
            return
        result.rolled_back = True
        result.rollback = report.lines()
        result.phase = int(Phase.NONE)
        self.log.warning("rolled back", collections=report.collections_deleted)


def run_migration(config: MigrationConfig, *, hooks: MigrationHooks | None = None) -> MigrationResult:
    """The original design's entry point: ``run_migration(create_migration_config(...))``."""
    return SQLiteToWeaviateMigrator(config, hooks=hooks).migrate()
