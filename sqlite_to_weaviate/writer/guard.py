"""RQ worker and job classes that run only the project's own job function.

RQ imports and calls whatever dotted name a job carries (``Queue(...).enqueue("os.system",
"...")`` runs a shell command in a stock worker); the JSON serializer changes how
arguments are encoded, not what runs. Job hashes can also name success/failure/stopped
callbacks (imported and called the same way) and webhooks (HTTP requests the worker
sends). Since anyone who can write to Redis can write a job hash, a worker of this
project refuses, *before importing anything a job names*:

* any function other than :data:`~sqlite_to_weaviate.writer.job.JOB_FUNCTION`, or one
  bound to an instance, or called with anything but one ticket argument;
* any job with callbacks, webhooks, retries or repeats (the relay never sets them).

A refused job is failed through RQ's ordinary failure path (it lands in the queue's
failed registry with the reason, under its ``failure_ttl``), logged, and counted in the
namespace's security hash (``status`` reports it); the worker then takes the next job.
A job hash that cannot even be read (garbage written into Redis) is refused the same way
instead of stopping the worker, which RQ's own loop would do.

Use ``sqlite-to-weaviate worker`` (which runs :class:`GuardedWorker`), or
``rq worker -w sqlite_to_weaviate.writer.guard.GuardedWorker`` (it always uses the JSON
serializer: RQ's default, pickle, would run code while merely reading a job). A stock
``rq worker`` has none of these checks.
"""

from __future__ import annotations

from typing import Any

import redis
from rq import SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from sqlite_to_weaviate.writer.job import JOB_FUNCTION, apply_batch
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.trust import SecurityEvents


class RefusedJob(Exception):
    """Raised instead of calling a job RQ should never have been asked to run."""


def refusal(job: Job) -> tuple[str, str] | None:
    """(kind, reason) why ``job`` must not run, or None. Reads only data: nothing the job
    names is imported."""
    try:
        job.func_name
    except Exception as exc:  # noqa: BLE001 - undecodable job data (DeserializationError and friends)
        return "unreadable_job", f"job data cannot be read ({_why(exc)})"
    reason = refusal_reason(job)
    return None if reason is None else ("foreign_function", reason)


def refusal_reason(job: Job) -> str | None:
    """Why ``job`` must not run, or None. Reads only data: nothing the job names is imported."""
    try:
        func_name, instance, args, kwargs = job.func_name, job.instance, job.args, job.kwargs
    except Exception as exc:  # noqa: BLE001 - undecodable job data (DeserializationError and friends)
        return f"job data cannot be read ({_why(exc)})"
    if func_name != JOB_FUNCTION:
        return f"function {_shown(func_name)} is not {JOB_FUNCTION}"
    if instance is not None:
        return "the job is bound to an instance"
    if kwargs or not isinstance(args, (list, tuple)) or len(args) != 1 or not isinstance(args[0], dict):
        return "the job's arguments are not one ticket"
    extras = [name for name, value in (
        ("success callback", job._success_callback_name), ("failure callback", job._failure_callback_name),
        ("stopped callback", job._stopped_callback_name), ("webhooks", job.webhooks),
        ("retries", job.retries_left), ("repeats", job.repeats_left),
    ) if value]
    if extras:
        return f"the job carries {', '.join(extras)}"
    return None


def _why(exc: BaseException) -> str:
    """The exception and what caused it, named by type only: RQ wraps every decoding failure
    in one DeserializationError, and the cause (a bad zlib stream, invalid JSON, a missing
    field) is what tells a vandalised hash from a race. Nothing read from Redis is echoed."""
    cause = exc.__cause__ or exc.__context__
    return type(exc).__name__ if cause is None else f"{type(exc).__name__} from {type(cause).__name__}"


def _shown(name: Any) -> str:
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


class GuardedJob(Job):
    """A job whose function resolves only to the project's own job function; no callbacks."""

    refused: str | None = None  # set by GuardedWorker once it refused the job: sticks, whatever is cleared

    @property
    def func(self):  # noqa: ANN201 - same contract as rq.job.Job.func
        reason = self.refused or refusal_reason(self)
        if reason is not None:
            raise RefusedJob(reason)
        return apply_batch  # a fixed reference: nothing is imported by name

    @property
    def success_callback(self):  # noqa: ANN201
        return None

    @property
    def failure_callback(self):  # noqa: ANN201
        return None

    @property
    def stopped_callback(self):  # noqa: ANN201
        return None



class GuardedWorker(SimpleWorker):
    """A SimpleWorker (jobs run in-process, ~10 ms less per job than forking) that refuses
    every job but the project's own and survives unreadable job hashes."""

    job_class = GuardedJob
    log_job_description = False  # descriptions are free text from Redis: not echoed into logs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Always JSON: RQ's default serializer is pickle, and unpickling job data from Redis
        # would run code before any check here could look at the job.
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = GuardedJob
        super().__init__(*args, **kwargs)
        self._security: dict[str, SecurityEvents] = {}

    def _events(self, queue_name: str) -> SecurityEvents:
        namespace = queue_name.removesuffix(".bulk").removesuffix(".apply")
        if namespace not in self._security:
            self._security[namespace] = SecurityEvents(self.connection, RedisKeys(namespace), flush_every=0.0)
        return self._security[namespace]

    def execute_job(self, job: Job, queue: Any) -> None:
        refused = refusal(job)
        if refused is not None:
            self._events(queue.name).note(*refused, job_id=job.id)
            job.refused = refused[1]
            job.retries_left = None  # a refused job is failed once, never retried
            job.repeats_left = None
            job.webhooks = []
        # The normal path: GuardedJob.func raises RefusedJob, RQ fails the job, no callback runs.
        super().execute_job(job, queue)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None):  # noqa: ANN201
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                raise
            except Exception as exc:  # noqa: BLE001 - a job hash that cannot be read: refuse it, keep working
                job_id = getattr(exc, "job_id", None)
                queue = getattr(exc, "queue", None)
                if job_id is None or queue is None:
                    raise
                self._discard_unreadable(str(job_id), queue, exc)

    def _discard_unreadable(self, job_id: str, queue: Any, exc: Exception) -> None:
        self._events(queue.name).note("unreadable_job", f"job hash cannot be read ({_why(exc)})",
                                      job_id=job_id)
        try:
            pipe = self.connection.pipeline()
            pipe.lrem(queue.intermediate_queue_key, 0, job_id)
            pipe.delete(Job.key_for(job_id))
            pipe.execute()
        except redis.exceptions.RedisError:
            pass
