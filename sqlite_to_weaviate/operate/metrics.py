"""Prometheus metrics and a health endpoint for the sidecar, one registry per sidecar.

A custom collector computes every series at scrape time from the relay's in-memory
snapshot and the durable status (outbox, dead letters, backfill checkpoints, last verify),
so the numbers can never drift from what ``status`` prints, and no module-level registry
is touched (two sidecars in one process, or a test, never collide).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from sqlite_to_weaviate.writer.status import PipelineStatus

METRIC_NAMES = (
    "s2w_lag_seconds", "s2w_outbox_depth", "s2w_bulk_backlog", "s2w_backfill_rows_remaining",
    "s2w_backfill_eta_seconds", "s2w_applied_total", "s2w_errors_total", "s2w_retries_total",
    "s2w_dead_letters", "s2w_backfill_rows_total", "s2w_backfill_progress_ratio", "s2w_verify_differences",
    "s2w_workers", "s2w_phase", "s2w_verify_runs_total", "s2w_verify_differences_found_total",
    "s2w_verify_repaired_total", "s2w_relay_stuck_seconds", "s2w_refused_total",
)
#: Series per embedder (label ``embedder``), served once a worker has published counts for it.
EMBEDDING_METRIC_NAMES = (
    "s2w_embedding_requests_total", "s2w_embedding_inputs_total", "s2w_embedding_chars_total",
    "s2w_embedding_tokens_total", "s2w_embedding_reused_total", "s2w_embedding_refused_total",
)


@dataclass
class MetricsSample:
    """Everything one scrape reports (filled by the sidecar's ``sample`` function)."""

    lag_seconds: float = 0.0          # the live lag: age of the oldest unapplied live change
    outbox_depth: int = 0             # the live backlog
    bulk_backlog: int = 0             # history/repair keys queued but not yet applied
    backfill_remaining: int | None = None
    backfill_eta_seconds: float | None = None
    applied_total: int = 0
    errors_total: int = 0
    retries_total: int = 0
    dead_letters: int = 0
    backfill_rows: dict[str, int] = field(default_factory=dict)
    backfill_progress: dict[str, float] = field(default_factory=dict)
    verify_differences: int | None = None
    verify_runs_total: int = 0
    verify_differences_found_total: int = 0
    verify_repaired_total: int = 0
    workers: int = 0
    phase: int = 0
    relay_stuck_seconds: float = 0.0                          # 0 unless the relay is stuck (writer/stuck.py)
    refused: dict[str, int] = field(default_factory=dict)     # refusals by kind (writer/trust.py)
    embeddings: dict[str, dict[str, int]] = field(default_factory=dict)  # embedder id -> counters (embed.counters)
    healthy: bool = True
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_status(cls, st: "PipelineStatus") -> "MetricsSample":
        """What ``status`` knows, as gauges: both lanes apart (invariant 11), dead letters, the
        backfill per table, a stuck relay, refusals, embedding counters and problems. The sidecar
        adds its own counters, workers, phase and verify results."""
        s = cls(lag_seconds=st.oldest_unapplied_age_s or 0.0, outbox_depth=st.outbox_depth,
                bulk_backlog=st.bulk_backlog, backfill_remaining=st.backfill_remaining,
                backfill_eta_seconds=st.backfill_eta_s, dead_letters=st.dead_letters,
                relay_stuck_seconds=round(st.stuck_seconds or 0.0, 3), refused=dict(st.refused),
                embeddings=dict(st.embeddings), problems=list(st.problems))
        for table, value in st.backfill.items():
            if not isinstance(value, dict):
                continue
            rows = int(value.get("rows_enqueued") or 0)
            total = value.get("total_estimate")
            s.backfill_rows[table] = rows
            s.backfill_progress[table] = 1.0 if value.get("done") else (min(1.0, rows / total) if total else 0.0)
        return s


class SidecarCollector(Collector):
    """Yields the s2w_* families from the latest :class:`MetricsSample` (cached ``ttl`` seconds)."""

    def __init__(self, sample: Callable[[], MetricsSample], ttl: float = 1.0) -> None:
        self._sample = sample
        self._ttl = ttl
        self._cached: tuple[float, MetricsSample] | None = None
        self._lock = threading.Lock()

    def latest(self) -> MetricsSample:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self._ttl:
                self._cached = (now, self._sample())
            return self._cached[1]

    def collect(self):  # -> Iterator[Metric]
        s = self.latest()
        yield GaugeMetricFamily("s2w_lag_seconds", "Live lag: age of the oldest live change not yet applied",
                                value=s.lag_seconds)
        yield GaugeMetricFamily("s2w_outbox_depth", "Live backlog: captured changes not yet applied",
                                value=s.outbox_depth)
        yield GaugeMetricFamily("s2w_bulk_backlog", "History and repair keys queued but not yet applied",
                                value=s.bulk_backlog)
        yield GaugeMetricFamily("s2w_backfill_rows_remaining", "Rows the backfill has yet to copy (-1: unknown)",
                                value=-1 if s.backfill_remaining is None else s.backfill_remaining)
        yield GaugeMetricFamily("s2w_backfill_eta_seconds", "Backfill ETA at the measured bulk rate (-1: unknown)",
                                value=-1 if s.backfill_eta_seconds is None else s.backfill_eta_seconds)
        yield CounterMetricFamily("s2w_applied", "Changes applied to Weaviate by this sidecar", value=s.applied_total)
        yield CounterMetricFamily("s2w_errors", "Failed or lost jobs seen by this sidecar", value=s.errors_total)
        yield CounterMetricFamily("s2w_retries", "Job retries scheduled by this sidecar", value=s.retries_total)
        yield GaugeMetricFamily("s2w_dead_letters", "Rows parked in the dead-letter table", value=s.dead_letters)
        rows = CounterMetricFamily("s2w_backfill_rows", "Keys enqueued by the backfill", labels=["table"])
        ratio = GaugeMetricFamily("s2w_backfill_progress_ratio", "Backfill progress 0..1", labels=["table"])
        for table, n in sorted(s.backfill_rows.items()):
            rows.add_metric([table], n)
        for table, r in sorted(s.backfill_progress.items()):
            ratio.add_metric([table], r)
        yield rows
        yield ratio
        yield GaugeMetricFamily("s2w_verify_differences", "Differences found by the last verify (-1: none run)",
                                value=-1 if s.verify_differences is None else s.verify_differences)
        yield CounterMetricFamily("s2w_verify_runs", "Verifies the sidecar ran on its own", value=s.verify_runs_total)
        yield CounterMetricFamily("s2w_verify_differences_found", "Differences its verifies found",
                                  value=s.verify_differences_found_total)
        yield CounterMetricFamily("s2w_verify_repaired", "Differences its verifies repaired",
                                  value=s.verify_repaired_total)
        yield GaugeMetricFamily("s2w_workers", "Worker processes alive", value=s.workers)
        yield GaugeMetricFamily("s2w_phase", "Migration phase (1 schema .. 5 cleanup)", value=s.phase)
        yield GaugeMetricFamily("s2w_relay_stuck_seconds",
                                "Seconds the relay has kept failing with nothing applied (0: not stuck)",
                                value=s.relay_stuck_seconds)
        yield CounterMetricFamily("s2w_refused", "Jobs and acks refused as forged, foreign or unverifiable "
                                  "(all kinds; `status` breaks them down)", value=sum(s.refused.values()))
        yield from _embedding_families(s.embeddings)


def _embedding_families(counters: dict[str, dict[str, int]]):  # -> Iterator[Metric]
    """Model calls and reuse per embedder, as the workers published them (Redis: informational)."""
    families = {
        "requests": CounterMetricFamily("s2w_embedding_requests", "Calls made to embedding models",
                                        labels=["embedder"]),
        "embedded": CounterMetricFamily("s2w_embedding_inputs", "Inputs embedded by a model (each once)",
                                        labels=["embedder"]),
        "chars": CounterMetricFamily("s2w_embedding_chars", "Characters embedded", labels=["embedder"]),
        "tokens": CounterMetricFamily("s2w_embedding_tokens", "Tokens embedded (when the model reports them)",
                                      labels=["embedder"]),
        "refused": CounterMetricFamily("s2w_embedding_refused", "Inputs a model refused (dead letters)",
                                       labels=["embedder"]),
    }
    reused = CounterMetricFamily("s2w_embedding_reused", "Vectors reused without a model call, by source",
                                 labels=["embedder", "source"])
    for embedder_id, counts in sorted(counters.items()):
        for counter, family in families.items():
            family.add_metric([embedder_id], counts.get(counter, 0))
        reused.add_metric([embedder_id, "object"], counts.get("reused_object", 0))
        reused.add_metric([embedder_id, "cache"], counts.get("reused_cache", 0))
    yield from families.values()
    yield reused


class MetricsServer:
    """``/metrics`` (Prometheus text) and ``/healthz`` (JSON, 200 or 503) on a loopback port."""

    def __init__(self, collector: SidecarCollector, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.collector = collector
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, ctype, code = generate_latest(registry), CONTENT_TYPE_LATEST, 200
                elif path in ("/healthz", "/health"):
                    s = collector.latest()
                    body = json.dumps({"healthy": s.healthy, "problems": s.problems, "workers": s.workers,
                                       "phase": s.phase, "lag_seconds": s.lag_seconds}).encode()
                    ctype, code = "application/json", 200 if s.healthy else 503
                else:
                    body, ctype, code = b"not found: try /metrics or /healthz\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="s2w-metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
