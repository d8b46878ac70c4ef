"""Start RQ workers that apply jobs to Weaviate, and keep them serving across Redis failures.

A :class:`rq.SimpleWorker` runs jobs in its own process (no fork per job: ~10 ms less
per job, and the gRPC channel is created once per process after any fork). Workers need
only Redis and Weaviate, never the SQLite file; the connection settings are exported to
the process environment where the job function (:mod:`sqlite_to_weaviate.writer.job`)
reads them, which is also how a plain ``rq worker`` is configured.

RQ's work loop *returns* when Redis fails under it mid-job (a heartbeat raising
ConnectionError is "an unhandled exception, quitting"), which is what every Sentinel
failover and every Redis restart looks like to a busy worker. A supervisor restarts the
workers of ``run``, but a bare ``sqlite-to-weaviate worker`` on another host would just
exit, so :func:`run_worker` reconnects with backoff and starts a fresh RQ worker (under a
new name: the old one may still be registered) until it is asked to stop.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from rq.exceptions import StopRequested

from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.job import request_timeout_for
from sqlite_to_weaviate.writer.redis_keys import RedisKeys

# a work loop that ran this long was healthy: the next failure starts the backoff over
_HEALTHY_SESSION_S = 30.0


def worker_environment(settings: Settings) -> dict[str, str]:
    """Variables the job function reads (the API key is passed only through the environment)."""
    env = {
        "S2W_WEAVIATE_URL": settings.weaviate_url,
        "S2W_MAX_RETRIES": str(settings.max_retries),
        "S2W_RETRY_DELAY": str(settings.retry_delay),
        "S2W_BACKOFF_MAX": str(settings.backoff_max),
        "S2W_REQUEST_TIMEOUT": str(request_timeout_for(settings.lease_seconds)),
        "S2W_WRITE_CONSISTENCY": settings.write_consistency,
    }
    if settings.weaviate_api_key:
        env["S2W_WEAVIATE_API_KEY"] = settings.weaviate_api_key.reveal()
    return env


def _stop_requested(worker: SimpleWorker | None) -> bool:
    """RQ's own SIGTERM/SIGINT handling (installed while ``work()`` runs) ended the loop."""
    return worker is not None and getattr(worker, "_shutdown_requested_date", None) is not None


def _install_stop_handlers(stop: threading.Event) -> None:
    """Between two RQ work loops (while reconnecting) a signal just ends the loop."""

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None, log_level: str = "WARNING") -> bool:
    """Process jobs until stopped (or, with ``burst``, until the queue is empty); True if any ran.

    Survives Redis going away (restart, failover, network): the RQ worker is re-created
    on a fresh connection after a backoff of ``retry_delay`` doubling up to ``backoff_max``.
    """
    os.environ.update(worker_environment(settings))
    log = get_logger("s2w.worker")
    stop = threading.Event()
    base = name or f"s2w-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    queue_name = RedisKeys(settings.namespace).queue
    worked = False
    failures = 0
    generation = 0
    while not stop.is_set():
        _install_stop_handlers(stop)
        worker: SimpleWorker | None = None
        started = time.monotonic()
        try:
            connection = settings.connect_redis()
            queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
            worker = SimpleWorker([queue], connection=connection, serializer=JSONSerializer,
                                  name=base if generation == 0 else f"{base}.{generation}")
            generation += 1
            worked = worker.work(burst=burst, logging_level=log_level, with_scheduler=False) or worked
            if _stop_requested(worker) or stop.is_set():
                return worked
            connection.ping()  # the loop ended with Redis reachable: a burst that is done (or a bug)
            if burst:
                return worked
            log.warning("rq work loop ended unexpectedly; starting a new one", worker=worker.name)
        except StopRequested:
            return worked
        except (redis.RedisError, OSError) as exc:
            if _stop_requested(worker):
                return worked
            log.warning("redis unavailable; reconnecting", error=f"{type(exc).__name__}: {exc}"[:300])
        if time.monotonic() - started > _HEALTHY_SESSION_S:
            failures = 0
        delay = min(settings.backoff_max, settings.retry_delay * (2 ** min(failures, 16)))
        failures += 1
        stop.wait(delay)
    return worked
