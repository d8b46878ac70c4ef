"""Start RQ workers that apply jobs to Weaviate.

A :class:`rq.SimpleWorker` runs jobs in its own process (no fork per job: ~10 ms less
per job, and the gRPC channel is created once per process after any fork). Workers need
only Redis and Weaviate; the connection settings are exported to the process environment
where the job function (:mod:`sqlite_to_weaviate.writer.job`) reads them, which is also
how a plain ``rq worker`` is configured.
"""

from __future__ import annotations

import os
import socket
import uuid

from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.redis_keys import RedisKeys


def worker_environment(settings: Settings) -> dict[str, str]:
    """Variables the job function reads (:class:`~sqlite_to_weaviate.settings.WorkerSettings`;
    the API key is passed only through the environment)."""
    return settings.to_environ()


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None, log_level: str = "WARNING") -> bool:
    """Process jobs until stopped (or, with ``burst``, until the queue is empty)."""
    os.environ.update(worker_environment(settings))
    connection = settings.connect_redis()
    queue = Queue(RedisKeys(settings.namespace).queue, connection=connection, serializer=JSONSerializer)
    worker = SimpleWorker(
        [queue], connection=connection, serializer=JSONSerializer,
        name=name or f"s2w-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}",
    )
    return worker.work(burst=burst, logging_level=log_level, with_scheduler=False)
