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
from sqlite_to_weaviate.writer.job import request_timeout_for
from sqlite_to_weaviate.writer.redis_keys import RedisKeys


def worker_environment(settings: Settings) -> dict[str, str]:
    """Variables the job function reads (the API key is passed only through the environment)."""
    env = {
        "S2W_WEAVIATE_URL": settings.weaviate_url,
        "S2W_MAX_RETRIES": str(settings.max_retries),
        "S2W_RETRY_DELAY": str(settings.retry_delay),
        "S2W_BACKOFF_MAX": str(settings.backoff_max),
        "S2W_REQUEST_TIMEOUT": str(request_timeout_for(settings.lease_seconds)),
    }
    if settings.weaviate_api_key:
        env["S2W_WEAVIATE_API_KEY"] = settings.weaviate_api_key.reveal()
    return env


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
