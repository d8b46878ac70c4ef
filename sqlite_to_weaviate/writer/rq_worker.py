"""Start RQ workers that apply jobs to Weaviate.

A :class:`~sqlite_to_weaviate.writer.guard.GuardedWorker` (an :class:`rq.SimpleWorker`:
jobs run in its own process, no fork per job, ~10 ms less per job, and the gRPC channel
is created once per process after any fork) runs only the project's own job function.
Workers need only Redis and Weaviate; the connection settings and the job secret are
exported to the process environment where the job function
(:mod:`sqlite_to_weaviate.writer.job`) reads them, which is also how a plain
``rq worker -w sqlite_to_weaviate.writer.guard.GuardedWorker`` is configured.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable

from rq import Queue
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
    if settings.sqlite_path.is_file():
        return False
    raise ConfigError(
        "this worker has no job secret: set S2W_JOB_SECRET or S2W_JOB_SECRET_FILE to the pipeline's secret "
        "(`sqlite-to-weaviate job-secret` prints it where the database is), or run the worker where it can "
        f"read the database ({settings.sqlite_path} does not exist here)"
    )


def worker_queues(namespace: str, *, live_only: bool = False) -> list[str]:
    """The queues a worker listens to, in the order it takes them: live first (invariant 11);
    a live-only worker is the reserve that keeps app changes fresh while history streams."""
    keys = RedisKeys(namespace)
    return [keys.queue] if live_only else keys.queues()


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None, log_level: str = "WARNING",
               allowed_collections: Iterable[str] = (), live_only: bool = False) -> bool:
    """Process jobs until stopped (or, with ``burst``, until the queue is empty)."""
    if not check_job_secret(settings):
        get_logger("s2w.worker").warning("no job secret in the database yet (run `init`); jobs are refused until "
                                         "there is one", database=str(settings.sqlite_path))
    os.environ.update(worker_environment(settings, allowed_collections))
    connection = settings.connect_redis()
    # live jobs first: RQ takes a job from the first queue that has one (invariant 11)
    queues = [Queue(name, connection=connection, serializer=JSONSerializer)
              for name in worker_queues(settings.namespace, live_only=live_only)]
    worker = GuardedWorker(
        queues, connection=connection, serializer=JSONSerializer,
        name=name or f"s2w-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}",
    )
    return worker.work(burst=burst, logging_level=log_level, with_scheduler=False)
