"""The one-shot migration facade (the original design's Python API) built on the pipeline.

``migrate()`` = preflight (read-only) -> backup -> phase 1 (capture + collections) ->
relay + workers -> phase 2 (backfill through the outbox, applied) -> drained -> phase 3 ->
verify + count check -> phase 4, or rollback when either fails and ``rollback_on_failure``
is set. Rows the mapping (or Weaviate) refused are rows missing from Weaviate: they fail
the migration, with the column, the reason and the mapping line that keeps them.
The app may keep writing throughout: capture is installed first, so every change after
that commit reaches Weaviate through the same ordered path as the backfill.

Every step is idempotent and checkpointed in SQLite, so running ``migrate`` again after a
crash resumes where it stopped (finished backfill tables are skipped).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.logs import configure_logging, get_logger
from sqlite_to_weaviate.settings import Settings

from .config import MigrationConfig, create_migration_config
from sqlite_to_weaviate.store.progress import read_progress

from .migration_result import MigrationResult
from .phases import Phase, record_verification, set_phase
from .preflight import preflight

__all__ = ["MigrationConfig", "MigrationHooks", "MigrationResult", "SQLiteToWeaviateMigrator",
           "create_migration_config", "run_migration"]


@dataclass
class MigrationHooks:
    """Callbacks at phase boundaries (operators: notifications; tests: fault injection)."""

    after_drain: Callable[[Settings], None] | None = None
    before_verify: Callable[[Settings], None] | None = None


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
            result.refused = result.plan["refused"]
            result.mapping_fix = result.plan["mapping_fix"]
            result.refusals = {t: p["refusal_lines"] for t, p in result.plan["tables"].items() if p["refused"]}
            result.errors += _refusal_errors(result.refusals, result.refused, "would be")
            result.success = result.refused == 0
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
        fixes = []
        for name, t in plan.tables.items():
            p = t.plan
            tables[name] = {"collection": t.collection, "rows": t.total_estimate or 0,
                            "collection_exists": t.collection in report.existing_collections,
                            "estimated_seconds": p.estimated_seconds if p else None,
                            "convert_rows_per_second": p.convert_rows_per_second if p else None,
                            "refused": p.refused if p else 0, "refusals": p.refusals if p else None,
                            "refusal_lines": p.refusal_lines if p else []}
            if p and p.refused and p.refusals and p.refusals.get("mapping_fix"):
                fixes.append(p.refusals["mapping_fix"])
        return {
            "tables": tables, "skipped": report.skipped, "rows": sum(t["rows"] for t in tables.values()),
            "collections_to_create": sorted(t["collection"] for t in tables.values() if not t["collection_exists"]),
            "workers": self.config.workers, "backup": self.config.backup_before_migration,
            "estimated_seconds": sum(t["estimated_seconds"] or 0.0 for t in tables.values()),
            "scan_seconds": round(plan.seconds, 3),
            "refused": sum(t["refused"] for t in tables.values()), "mapping_fix": "\n".join(fixes) or None,
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

        from sqlite_to_weaviate.initialize import initialize

        from .backup import backup_database
        from .worker_pool import WorkerPool

        if self.config.backup_before_migration:
            backup = self._timed(result, "backup",
                                 lambda: backup_database(self.settings.sqlite_path, self.config.backup_path))
            result.backup_path = str(backup.path)
        init = self._timed(result, "schema", lambda: initialize(self.settings))
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
            counts = self._timed(result, "count_check", lambda: self._count_check(result, summary))
            problems = self._problems(result, summary, counts)
            result.errors += problems
            if not problems:
                self._set_phase(result, Phase.VERIFIED)
                result.success = True
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
                if read_progress(conn).caught_up and relay.idle:
                    return
                time.sleep(0.1)
        finally:
            conn.close()
        raise MigrationFailed(f"changes still not applied after {self.config.timeout_s:.0f}s; see `status`")

    def _counts(self) -> dict[str, int]:
        from .counts import count_objects

        conn = self.settings.open_db(readonly=True)
        try:
            names = [t.collection for t in self.settings.load_mapping(conn).collections_in_order()]
        finally:
            conn.close()
        client = self.settings.connect_weaviate()
        try:
            return {name: count_objects(client, name) for name in names}
        finally:
            client.close()

    def _count_check(self, result: MigrationResult, summary: Any) -> Any:  # -> CountCheck
        """SQLite rows vs Weaviate objects per table, on a quiet snapshot (the relay is still running)."""
        from .counts import check_counts

        conn = self.settings.open_db(readonly=True)
        client = self.settings.connect_weaviate()
        try:
            check = check_counts(conn, client, self.settings.load_mapping(conn),
                                 catch_up_timeout=min(60.0, self.config.timeout_s))
        finally:
            client.close()
            conn.close()
        refused = {t: int(r.get("rows") or 0) for t, r in summary.refusals.items()}
        result.counts = {c.table: {**c.to_json(), "refused": refused.get(c.table, 0)} for c in check.tables}
        result.collections = {c.collection: c.objects for c in check.tables}
        result.migrated_records = sum(result.collections.values())
        return check

    def _problems(self, result: MigrationResult, summary: Any, counts: Any) -> list[str]:
        """Why the migration is not a success: refused rows, other differences, unequal counts, dead letters."""
        from sqlite_to_weaviate.store import dead_letters

        problems: list[str] = []
        if summary.refused:
            result.refused = summary.refused
            result.refusals = {t: list(r.get("lines") or []) for t, r in summary.refusals.items()}
            result.mapping_fix = "\n".join(r["mapping_fix"] for r in summary.refusals.values()
                                           if r.get("mapping_fix")) or None
            problems += _refusal_errors(result.refusals, summary.refused, "are")
        if summary.search_below:
            problems.append("search validation failed: recall below "
                            f"{self.config.search_min_recall:.0%} for {', '.join(summary.search_below)} "
                            f"({'; '.join(summary.search.values())})")
        other = summary.differences - summary.refused
        if other or (not summary.clean and not summary.refused and not summary.search_below):
            examples = [e for e in summary.examples if " refused " not in e][:3]
            problems.append(f"verification failed: {other} difference(s) between SQLite and Weaviate"
                            f"{' (' + ', '.join(examples) + ')' if examples else ''}")
        if counts.comparable:
            for c in counts.mismatches:
                refused = int((summary.refusals.get(c.table) or {}).get("rows") or 0)
                problems.append(f"count check failed: {c.table}: {c.rows} rows -> {c.collection}: {c.objects} objects"
                                + (f" ({refused} refused, see above)" if refused else ""))
        else:
            result.warnings.append("count check skipped: the app kept writing during every attempt "
                                   "(the content-hash verification above covers every row)")
        conn = self.settings.open_db(readonly=True)
        try:
            letters = dead_letters.count(conn)
        finally:
            conn.close()
        if letters and not summary.refused:
            problems.append(f"{letters} dead letter(s): rows Weaviate or the mapping refused (see `dead-letters list`)")
        return problems

    def _verify(self, result: MigrationResult):  # -> VerificationSummary
        """Verify every row by content hash, and ``validation_sample_size`` rows field by field."""
        from .verification import run_verification

        search = None
        if self.config.search_validation_sample:
            from sqlite_to_weaviate.verify.search import SearchOptions

            search = SearchOptions(sample=self.config.search_validation_sample, min_recall=self.config.search_min_recall)
        summary = run_verification(self.settings, sample=self.config.validation_sample_size, search=search)
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


def _refusal_errors(refusals: dict[str, list[str]], total: int, verb: str) -> list[str]:
    """One error for the total, then one per (table, column, reason) with what to write in the mapping."""
    if not total:
        return []
    errors = [f"{total} row(s) {verb} refused by the mapping or Weaviate: "
              f"they {'would be' if verb != 'are' else 'are'} missing from Weaviate"]
    errors += [f"{table}.{line}" for table, lines in refusals.items() for line in lines]
    return errors


def run_migration(config: MigrationConfig, *, hooks: MigrationHooks | None = None) -> MigrationResult:
    """The original design's entry point: ``run_migration(create_migration_config(...))``."""
    return SQLiteToWeaviateMigrator(config, hooks=hooks).migrate()
