"""Start RQ workers that apply jobs to Weaviate, and keep them serving across Redis failures.

A :class:`~sqlite_to_weaviate.writer.guard.GuardedWorker` (an :class:`rq.SimpleWorker`:
jobs run in its own process, no fork per job, ~10 ms less per job, and the gRPC channel
is created once per process after any fork) runs only the project's own job function.
Workers need only Redis and Weaviate, never the SQLite file (beside it they read the job
secret from it); the connection settings and the job secret are exported to the process
environment where the job function (:mod:`sqlite_to_weaviate.writer.job`) reads them,
which is also how a plain ``rq worker -w sqlite_to_weaviate.writer.guard.GuardedWorker``
is configured.

RQ's work loop *returns* when Redis fails under it mid-job (a heartbeat raising
ConnectionError is "an unhandled exception, quitting"), which is what every Sentinel
failover and every Redis restart looks like to a busy worker. A supervisor restarts the
workers of ``run``, but a bare ``sqlite-to-weaviate worker`` on another host would just
exit, so :func:`run_worker` reconnects with backoff and starts a fresh RQ worker (under a
new name: the old one may still be registered) until it is asked to stop; a worker that
starts while Redis is unreachable (a failover in progress, a Redis still starting) waits
the same way. A refused password, or any failure of a ``--burst`` run, is an error the
caller reports (exit 3).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import redis
from rq import Queue
from rq.exceptions import StopRequested
from rq.serializers import JSONSerializer

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.guard import GuardedWorker
from sqlite_to_weaviate.writer.job_secret import worker_job_secret
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.trust import ALLOWED_COLLECTIONS_ENV


def worker_environment(settings: Settings, allowed_collections: Iterable[str] = ()) -> dict[str, str]:
    """Variables the job function reads: the settings (:class:`~sqlite_to_weaviate.settings.WorkerSettings`
    and the job secret among them; secrets pass only through the environment), plus this
    worker's own allow-list of collections, if it has one."""
    env = settings.to_environ()
    # (S2W_MAPPING_FILE among them: its [embedders] say what the embedder names in jobs mean.)
    # numpy's BLAS with one thread per worker process (a local embedding model): scale with
    # processes; multi-threaded BLAS collapses when the cores are oversubscribed
    env["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS", "1")
    allowed = sorted({name.strip() for name in allowed_collections if name.strip()})
    if allowed:
        env[ALLOWED_COLLECTIONS_ENV] = ",".join(allowed)
    return env


def check_job_secret(settings: Settings) -> bool:
    """Fail fast when this worker could never verify a job: no secret given and no database
    to read it from. Returns whether a secret is available right now (a worker beside the
    database may start before ``init`` has generated one; it reads it when jobs arrive)."""
    if worker_job_secret(settings.job_secret, settings.sqlite_path) is not None:
        return True
    if settings.sqlite_path is not None and settings.sqlite_path.is_file():
        return False
    where = ("no database path is given" if settings.sqlite_path is None
             else f"{settings.sqlite_path} does not exist here")
    raise ConfigError(
        "this worker has no job secret: set S2W_JOB_SECRET or S2W_JOB_SECRET_FILE to the pipeline's secret "
        "(`sqlite-to-weaviate job-secret` prints it where the database is), or run the worker where it can "
        f"read the database ({where})"
    )


def worker_queues(namespace: str, *, live_only: bool = False) -> list[str]:
    """The queues a worker listens to, in the order it takes them: live first (invariant 11);
    a live-only worker is the reserve that keeps app changes fresh while history streams."""
    keys = RedisKeys(namespace)
    return [keys.queue] if live_only else keys.queues()


# a work loop that ran this long was healthy: the next failure starts the backoff over
_HEALTHY_SESSION_S = 30.0


def _stop_requested(worker: GuardedWorker | None) -> bool:
    """RQ's own SIGTERM/SIGINT handling (installed while ``work()`` runs) ended the loop."""
    return worker is not None and getattr(worker, "_shutdown_requested_date", None) is not None


def _install_stop_handlers(stop: threading.Event) -> None:
    """Between two RQ work loops (while reconnecting) a signal just ends the loop."""

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None, log_level: str = "WARNING",
               allowed_collections: Iterable[str] = (), live_only: bool = False) -> bool:
    """Process jobs until stopped (or, with ``burst``, until the queue is empty); True if any ran.

    Survives Redis going away (restart, failover, network), also at start: the RQ worker
    is re-created on a fresh connection after a backoff of ``retry_delay`` doubling up to
    ``backoff_max``. A refused password, or a failure of a burst run, raises instead
    (``redis.RedisError``).
    """
    log = get_logger("s2w.worker")
    if not check_job_secret(settings):
        log.warning("no job secret in the database yet (run `init`); jobs are refused until there is one",
                    database=str(settings.sqlite_path))
    os.environ.update(worker_environment(settings, allowed_collections))
    stop = threading.Event()
    base = name or f"s2w-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    worked = False
    failures = 0
    generation = 0
    while not stop.is_set():
        _install_stop_handlers(stop)
        worker: GuardedWorker | None = None
        started = time.monotonic()
        try:
            connection = settings.connect_redis()
            connection.ping()
            # live jobs first: RQ takes a job from the first queue that has one (invariant 11)
            queues = [Queue(queue_name, connection=connection, serializer=JSONSerializer)
                      for queue_name in worker_queues(settings.namespace, live_only=live_only)]
            worker = GuardedWorker(queues, connection=connection, serializer=JSONSerializer,
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
            if burst or isinstance(exc, redis.AuthenticationError):
                raise
            log.warning("redis unavailable; reconnecting", error=f"{type(exc).__name__}: {exc}"[:300])
        if time.monotonic() - started > _HEALTHY_SESSION_S:
            failures = 0
        delay = min(settings.backoff_max, settings.retry_delay * (2 ** min(failures, 16)))
        failures += 1
        stop.wait(delay)
    return worked
