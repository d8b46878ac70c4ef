"""``run``: the all-in-one sidecar — relay, supervised workers, backfill until done, metrics,
and its own verifier.

The sidecar checks itself: once the backfill is applied it runs a full verify, then one
every ``verify_every`` seconds, and one soon after the pipeline recovers from a fault
(a lost job, a failed batch, a Redis wipe: Weaviate can lose index entries when it crashes,
which no ordering on our side prevents). By default it repairs what differs through the
outbox (ordered with live traffic like any change). Whatever it finds is logged as a warning
naming the keys and counted in ``/metrics``, so a divergence that slipped past every other
defence is fixed without a human, and still seen by one.

Shutdown is graceful and loses nothing by construction: the outbox in SQLite is the source
of truth, so on SIGTERM/SIGINT the backfill stops after its current page (its checkpoint
commits with the page), the relay gets a short grace period to collect the
acknowledgements of in-flight jobs (so the next start re-sends less), and workers get
SIGTERM, which RQ treats as "finish the current job, then exit". Whatever was not
acknowledged is re-sent by the next relay from its checkpoint.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.backfill import BackfillOptions
from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.relay import Relay

from .metrics import MetricsSample, MetricsServer, SidecarCollector
from .phases import Phase, get_phase, last_verification, set_phase


DEFAULT_VERIFY_EVERY = 3600.0
"""A full verify reads both stores; hourly keeps that a few percent of a large table's time."""
FAULT_SETTLE_S = 30.0
"""After the last fault the relay saw, wait this long (and for owed re-sends) before verifying."""


@dataclass
class VerifyCounters:
    """What the sidecar's own verifier did since it started (for ``/metrics``)."""

    runs: int = 0
    failures: int = 0
    differences_found: int = 0
    repaired: int = 0


@dataclass(frozen=True)
class SidecarOptions:
    workers: int = 2
    # more workers that take only live jobs (worker_pool); two, because during a large backfill
    # a live job's request can wait tenths of a second in Weaviate, and ~10 go out per second
    live_workers: int = 2
    init: bool = True
    backfill: bool = True
    backfill_options: BackfillOptions | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9464       # None: no HTTP endpoint
    shutdown_grace: float = 10.0          # relay: collect in-flight acks for up to this long
    worker_stop_timeout: float = 30.0     # then SIGKILL (the job is re-sent, never lost)
    watch: bool = True
    max_lag_s: float = 60.0
    max_stuck_s: float = 30.0             # relay failing with nothing applied this long: /healthz 503
    log_dir: Path | None = None
    worker_log_level: str = "WARNING"
    verify_every: float = DEFAULT_VERIFY_EVERY  # seconds between verifies once live (0: never)
    verify_sample: int = 100
    verify_repair: bool = True            # repair what a periodic verify finds (else only report it)
    verify_search: bool = False           # each periodic verify also checks search (verify --search)


class Sidecar:
    """Build, :meth:`run` (blocks), :meth:`stop` from a signal handler or another thread."""

    def __init__(self, settings: Settings, options: SidecarOptions | None = None) -> None:
        self.settings = settings
        self.options = options or SidecarOptions()
        self.log = get_logger("s2w.sidecar")
        self._stop = threading.Event()
        self._relay: Relay | None = None
        self.pool = None
        self.metrics: MetricsServer | None = None
        self.backfill_report = None
        self.backfill_error: str | None = None
        self.verify_counters = VerifyCounters()
        self.ready = threading.Event()

    def stop(self) -> None:
        """Signal-handler safe: only sets events."""
        self._stop.set()
        if self._relay is not None:
            self._relay.stop()

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        from sqlite_to_weaviate.initialize import initialize

        from .worker_pool import WorkerPool

        from .preflight import ensure_no_relay

        ensure_no_relay(self.settings, hint="run exactly one sidecar (or relay) per database")
        if self.options.init:
            initialize(self.settings)
            self._advance(Phase.SCHEMA)
        if self.options.metrics_port is not None:  # bind first: a busy port fails before anything starts
            try:
                self.metrics = MetricsServer(SidecarCollector(self.sample), host=self.options.metrics_host,
                                             port=self.options.metrics_port)
            except OSError as exc:
                raise S2WError(f"cannot serve metrics on {self.options.metrics_host}:{self.options.metrics_port} "
                               f"({exc.strerror or exc}); pass another --metrics-port or --no-metrics") from None
        relay = Relay(self.settings)
        self._relay = relay
        if self._stop.is_set():
            relay.stop()
        self.pool = WorkerPool(self.settings, self.options.workers, log_dir=self.options.log_dir,
                               log_level=self.options.worker_log_level,
                               live_reserve=self.options.live_workers).start()
        threads = [threading.Thread(target=self.pool.supervise, args=(self._stop,), name="s2w-supervisor", daemon=True)]
        backfill_stop = threading.Event()
        if self.options.backfill:
            threads.append(threading.Thread(target=self._backfill, args=(backfill_stop,), name="s2w-backfill",
                                            daemon=True))
        if self.options.verify_every > 0:
            threads.append(threading.Thread(target=self._verify_loop, name="s2w-verify", daemon=True))
        if self.metrics is not None:
            self.metrics.start()
            self.log.info("metrics endpoint", url=f"http://{self.options.metrics_host}:{self.metrics.port}/metrics")
        for t in threads:
            t.start()
        self.ready.set()
        try:
            relay.run(watch=self.options.watch)
        finally:
            self.log.info("shutting down")
            self._stop.set()
            backfill_stop.set()
            for t in threads:
                t.join(timeout=30)
            try:
                drained = relay.drain(self.options.shutdown_grace) if self.options.shutdown_grace > 0 else False
                self.log.info("relay settled in-flight work" if drained else "relay handed back unfinished work",
                              checkpoints=relay.checkpoints)
            except Exception as exc:  # noqa: BLE001 - unacknowledged work is re-sent by the next relay
                self.log.warning("grace period ended with an error", error=str(exc))
            self.pool.stop(self.options.worker_stop_timeout)
            relay.close()
            if self.metrics is not None:
                self.metrics.stop()
            self.log.info("sidecar stopped")
        return 0

    def _advance(self, phase: Phase) -> None:
        conn = self.settings.open_db()
        try:
            set_phase(conn, phase)
        finally:
            conn.close()

    def _phase(self) -> Phase:
        conn = self.settings.open_db(readonly=True)
        try:
            return get_phase(conn)
        finally:
            conn.close()

    def _backfill(self, stop: threading.Event) -> None:
        from sqlite_to_weaviate.backfill import backfill

        options = replace(self.options.backfill_options or BackfillOptions(), wait_applied=True)
        try:
            if self._phase() < Phase.LIVE:
                self._advance(Phase.BACKFILL)
            report = backfill(self.settings, options, stop=stop)
            self.backfill_report = report
            if report.done and report.applied and not report.stopped:
                self._advance(Phase.LIVE)
                self.log.info("backfill applied: dual-write live (phase 3)")
        except Exception as exc:  # noqa: BLE001 - the relay keeps running; status/metrics show the error
            self.backfill_error = f"{type(exc).__name__}: {exc}"
            self.log.error("backfill failed", error=self.backfill_error)

    def _verify_loop(self) -> None:
        """Verify as soon as the backfill is applied, then every ``verify_every`` seconds.

        A clean verify with the gate open is phase 4. A failed run is retried after a
        minute (or the interval, if shorter), not a whole interval later.
        """
        next_at = 0.0
        faults_verified, faults_seen, fault_at = 0, 0, 0.0
        while not self._stop.wait(1.0):
            now = time.monotonic()
            faults = self._fault_count()
            if faults != faults_seen:
                faults_seen, fault_at = faults, now
            after_fault = (faults_seen > faults_verified and now - fault_at >= FAULT_SETTLE_S
                           and self._resends_owed() == 0)
            if now < next_at and not after_fault:
                continue
            try:
                if self._phase() < Phase.LIVE:
                    continue
                self.verify_once()
                faults_verified = faults_seen
                next_at = time.monotonic() + self.options.verify_every
            except Exception as exc:  # noqa: BLE001 - retried soon; metrics and the log show it
                self.verify_counters.failures += 1
                next_at = time.monotonic() + min(60.0, self.options.verify_every)
                self.log.warning("periodic verify failed", error=str(exc)[:300])

    def _fault_count(self) -> int:
        stats = self._relay_stats()
        return sum(stats.get(k, 0) for k in ("retries", "lost_jobs", "redis_wipes", "stale_acks", "unsure_jobs"))

    def _resends_owed(self) -> int:
        from sqlite_to_weaviate.store import resends

        conn = self.settings.open_db(readonly=True)
        try:
            return resends.pending(conn)[0]
        finally:
            conn.close()

    def verify_once(self) -> Any:
        """One verify (repairing unless told not to); logs what differed, by key."""
        from sqlite_to_weaviate.verify import verify

        from .verification import record_report

        from sqlite_to_weaviate.verify.search import SearchOptions

        search = SearchOptions() if self.options.verify_search else None
        report = verify(self.settings, sample=self.options.verify_sample, repair=self.options.verify_repair,
                        search=search)
        self._prune_embedding_cache()
        ready = record_report(self.settings, report, self.options.verify_sample)
        counters = self.verify_counters
        counters.runs += 1
        counters.differences_found += report.differences
        counters.repaired += sum(t.repaired for t in report.tables.values())
        if report.differences:
            self.log.warning("verify found differences" + (" and repaired them" if report.exit_code() == 2 else ""),
                             differences=report.differences, repaired=sum(t.repaired for t in report.tables.values()),
                             keys=_difference_keys(report))
        self.log.info("verified", clean=report.clean, differences=report.differences, ready=ready)
        return report

    def _prune_embedding_cache(self) -> None:
        """Keep the embedding cache within its bound (a no-op without embedders); never fails the check."""
        from .embedding_status import prune_cache

        try:
            pruned = prune_cache(self.settings)
        except Exception as exc:  # noqa: BLE001 - retried at the next check; the log says why
            self.log.warning("embedding cache not pruned", error=str(exc)[:300])
            return
        if pruned.deleted_by_age or pruned.deleted_by_count:
            self.log.info("embedding cache pruned", before=pruned.before, after=pruned.after)

    # ------------------------------------------------------------------ metrics
    def sample(self) -> MetricsSample:
        from sqlite_to_weaviate.writer.status import collect_status

        st = collect_status(self.settings, max_lag_s=self.options.max_lag_s, max_stuck_s=self.options.max_stuck_s)
        s = MetricsSample.from_status(st)
        stats = self._relay_stats()
        s.applied_total = stats.get("applied_changes", 0)
        s.retries_total = stats.get("retries", 0)
        s.errors_total = stats.get("retries", 0) + stats.get("lost_jobs", 0) + stats.get("redis_wipes", 0)
        s.workers = self.pool.alive if self.pool is not None else 0
        conn = self.settings.open_db(readonly=True)
        try:
            s.phase = int(get_phase(conn))
            verification = last_verification(conn)
        finally:
            conn.close()
        s.verify_differences = None if verification is None else int(verification.get("differences") or 0)
        s.verify_runs_total = self.verify_counters.runs
        s.verify_differences_found_total = self.verify_counters.differences_found
        s.verify_repaired_total = self.verify_counters.repaired
        if self.pool is not None and s.workers < self.pool.count:
            s.problems.append(f"{self.pool.count - s.workers} worker(s) down (restarting)")
        if self.backfill_error:
            s.problems.append(f"backfill failed: {self.backfill_error}")
        s.healthy = not s.problems
        return s

    def _relay_stats(self) -> dict[str, int]:
        relay = self._relay
        if relay is None:
            return {}
        for _ in range(5):
            try:
                return dict(relay.stats)
            except RuntimeError:  # mutated while copying (relay thread); try again
                time.sleep(0.001)
        return {}


def _difference_keys(report: Any, limit: int = 20) -> list[str]:
    """``table kind key`` of the first differences of a verify report (for the warning log)."""
    out: list[str] = []
    for name, table in report.tables.items():
        for kind in ("missing", "extra", "stale", "unindexed", "sample_mismatches"):
            for entry in getattr(table, kind).items:
                if len(out) >= limit:
                    return out
                out.append(f"{name} {kind} {entry.key if entry.key is not None else entry.uuid}")
    return out
