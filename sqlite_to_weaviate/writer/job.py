"""The RQ job function: fence check, lease, apply, acknowledge.

Workers run this with only Redis and Weaviate at hand. Fencing: the relay stores the
token of the one job allowed to write for a partition; a job whose token is no longer
current (it was declared lost and re-dispatched) writes nothing. The job also holds a
lease key with a TTL that it renews between requests, and stops sending requests once its
own lease deadline passes, so a worker paused past its lease (SIGSTOP, GC, VM freeze) that
wakes up later cannot overwrite newer data: by then the relay has re-dispatched the
partition, and the job sees it is fenced. (docs/architecture.md, invariant 4, argues the
remaining window and how the relay's re-sweep closes it.)

A write the job started can still land late: each request carries a deadline of a third
of the lease and the job starts no call later than one deadline before its lease ends,
but one client call retries by itself while the server is unavailable, and a server may
finish a cancelled request. :func:`write_horizon` bounds all of that; the relay re-sends
the keys of every job whose outcome it does not know once more after that horizon, from
a durable list (``writer.resends``), so the last write of each key is a fresh read.

The Weaviate client is created lazily once per worker process, after any fork (a gRPC
channel created before ``fork()`` hangs in the child), from ``S2W_WEAVIATE_URL`` /
``S2W_WEAVIATE_API_KEY`` which ``sqlite-to-weaviate worker`` exports; a plain
``rq worker`` works with the same variables set.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import rq

from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.writer.payload import Ack, JobPayload, JobTicket, PayloadError
from sqlite_to_weaviate.writer.redis_identity import still_current
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.weaviate_apply import Fenced, RetryPolicy, TransientError, apply_deletes, apply_upserts

JOB_FUNCTION = "sqlite_to_weaviate.writer.job.apply_batch"


# weaviate-client retries a batch request that finds the server UNAVAILABLE by itself, up to
# 4 tries with 1, 2 and 4 s sleeps between them (``insert_many`` passes ``max_retries=2`` to
# its exponential backoff), all inside ONE call that our lease guard cannot interrupt.
CLIENT_TRIES_PER_CALL = 4
CLIENT_RETRY_SLEEPS_S = 1 + 2 + 4
# How long a server may still apply a request after the client's deadline passed (it
# checks the cancelled context between steps, and a request can be half-applied).
SERVER_GRACE_S = 5.0


def request_timeout_for(lease_seconds: float) -> float:
    """The write-request deadline that goes with a lease (a third of it)."""
    return lease_seconds / 3


def write_horizon(lease_seconds: float) -> float:
    """How long after a job lost its lease, or reported failure, a write it started can land.

    A job starts a call only while its lease has more than one request deadline left; the
    call can retry inside the client (``CLIENT_TRIES_PER_CALL`` requests, each with the
    deadline, plus the sleeps between them), and the server may finish a cancelled request
    a little later. The relay re-sends the job's keys once more after this horizon, so the
    last write of every key is a fresh read (docs/architecture.md, invariant 4).
    """
    deadline = request_timeout_for(lease_seconds)
    return lease_seconds + CLIENT_TRIES_PER_CALL * deadline + CLIENT_RETRY_SLEEPS_S + SERVER_GRACE_S


class _ProcessClient:
    """The one Weaviate client of this worker process (re-created if the pid changes)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._client: Any = None

    def get(self) -> Any:
        if self._client is None or self._pid != os.getpid():
            from sqlite_to_weaviate.weaviate_adapter import WeaviateEndpoint

            url = os.environ.get("S2W_WEAVIATE_URL")
            if not url:
                raise RuntimeError("S2W_WEAVIATE_URL is not set in the worker's environment")
            request_timeout = float(os.environ.get("S2W_REQUEST_TIMEOUT", "10"))
            self._client = WeaviateEndpoint.parse(url, os.environ.get("S2W_WEAVIATE_API_KEY") or None).connect(
                timeout_s=max(request_timeout, 5.0), insert_timeout_s=request_timeout
            )
            self._pid = os.getpid()
        return self._client

    def reset(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - a broken client is being discarded anyway
                pass
        self._client = None


_process_client = _ProcessClient()


def _consistency_from_env() -> str | None:
    """The write consistency level ``sqlite-to-weaviate worker`` exported (None: the server's default)."""
    return os.environ.get("S2W_WRITE_CONSISTENCY") or None


def _policy_from_env() -> RetryPolicy:
    return RetryPolicy(
        max_retries=int(os.environ.get("S2W_MAX_RETRIES", "3")),
        retry_delay=float(os.environ.get("S2W_RETRY_DELAY", "1.0")),
        backoff_max=float(os.environ.get("S2W_BACKOFF_MAX", "30")),
    )


class Lease:
    """Fence check + lease renewal before every request to Weaviate."""

    def __init__(self, redis_conn: Any, keys: RedisKeys, ticket: JobTicket) -> None:
        self._redis = redis_conn
        self._keys = keys
        self._ticket = ticket
        # Stop starting requests one request-timeout before the lease ends: a request begun
        # before that either completes or hits its deadline before the relay can re-dispatch.
        self._margin = request_timeout_for(ticket.lease_seconds)
        self._deadline = 0.0

    def guard(self) -> None:
        """Raise Fenced unless this job still owns its partition; renew the lease."""
        p = self._ticket
        now = time.monotonic()
        if self._deadline and now >= self._deadline:
            raise Fenced(f"lease of partition {p.partition} expired locally")
        pipe = self._redis.pipeline()
        pipe.get(self._keys.fence(p.partition))
        pipe.set(self._keys.lease(p.partition), p.token, px=int(p.lease_seconds * 1000))
        current, _ = pipe.execute()
        if current is None or current.decode() != p.token:
            raise Fenced(f"partition {p.partition} now belongs to job {current!r}, not {p.token}")
        if not still_current(self._redis, p.redis_id):  # a failover may have restored an old fence
            raise Fenced(f"Redis was replaced since job {p.token} was dispatched (failover or restart)")
        self._deadline = now + p.lease_seconds - self._margin

    def release(self) -> None:
        p = self._ticket
        key = self._keys.lease(p.partition)
        # delete only our own lease (compare-and-delete in one round trip)
        self._redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            1, key, p.token,
        )


def apply_batch(raw_ticket: dict[str, Any]) -> dict[str, Any]:
    """RQ entry point. Returns the Ack as a dict (also pushed to the relay's ack list)."""
    started = time.monotonic()
    ticket = JobTicket.from_json(raw_ticket)
    keys = RedisKeys(ticket.namespace)
    job = rq.get_current_job()
    redis_conn = job.connection if job is not None else None
    if redis_conn is None:
        raise RuntimeError("apply_batch must run inside an RQ job")
    log = get_logger("s2w.worker", batch_id=ticket.batch_id, partition=ticket.partition)
    lease = Lease(redis_conn, keys, ticket)
    rejected: dict[str, str] = {}
    outcome, error = "applied", None
    payload = JobPayload()
    try:
        client = _process_client.get()
        policy = _policy_from_env()
        lease.guard()
        payload = _load_payload(redis_conn, keys, ticket)
        consistency = _consistency_from_env()
        if payload.upserts:
            rejected = apply_upserts(client, payload.upserts, policy, lease.guard, frozenset(payload.replace),
                                     consistency)
        if payload.deletes:
            apply_deletes(client, payload.deletes, policy, lease.guard, consistency)
        lease.release()
    except Fenced as exc:
        outcome, error = "fenced", str(exc)
        log.warning("job fenced off", reason=str(exc))
    except (TransientError, PayloadError) as exc:
        outcome, error = "transient", str(exc)
        if isinstance(exc, TransientError):
            _process_client.reset()
        lease.release()
        log.warning("job handed back", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - any other failure is reported, then RQ records it
        outcome, error = "transient", f"{type(exc).__name__}: {exc}"
        _process_client.reset()
        log.error("job failed", error=error)
    ack = Ack(
        batch_id=ticket.batch_id, partition=ticket.partition, token=ticket.token, outcome=outcome,
        rejected=rejected, error=error, worker=f"{socket.gethostname()}:{os.getpid()}",
        seconds=round(time.monotonic() - started, 4),
    )
    pipe = redis_conn.pipeline(transaction=False)
    pipe.delete(keys.payload(ticket.token))  # whatever the outcome, a re-send gets a new token and payload
    pipe.rpush(keys.acks, ack.dumps())
    pipe.execute()
    log.info("job done", outcome=outcome, upserts=len(payload.upserts), deletes=len(payload.deletes),
             rejected=len(rejected), seconds=ack.seconds)
    return ack.__dict__


def _load_payload(redis_conn: Any, keys: RedisKeys, ticket: JobTicket) -> JobPayload:
    raw = redis_conn.get(keys.payload(ticket.token))
    if raw is None:
        # The fence still names this job, so Redis lost the key (evicted, or expired while
        # the job waited for a worker longer than the payload TTL): hand the job back.
        raise PayloadError(f"the payload of job {ticket.token} is gone from Redis")
    return JobPayload.loads(raw)
