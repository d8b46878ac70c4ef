"""The RQ job function: fence check, lease, apply, acknowledge.

Workers run this with only Redis and Weaviate at hand. Fencing: the relay stores the
token of the one job allowed to write for a partition's bulk lane or a live slot (a ticket
may name several, each fenced with its token); a job whose token is no longer current for
any of them (it was declared lost, and its fence retired or re-dispatched) writes nothing. The job also holds a
lease key with a TTL that it renews between requests, and stops sending requests once its
own lease deadline passes, so a worker paused past its lease (SIGSTOP, GC, VM freeze) that
wakes up later cannot overwrite newer data: by then the relay has retired its fence or
given it to another job, and the job sees it is fenced. (docs/architecture.md, invariant 4, argues the
remaining window and how the relay's re-sweep closes it.)

A Redis failover (or restart) can bring back an old fence together with a job the relay
has since replaced; the job's ticket names the Redis identity it was dispatched under,
and the job writes nothing once Redis has another (:mod:`.redis_identity`).

A write the job started can still land late: each request carries a deadline of a third
of the lease and the job starts no call later than one deadline before its lease ends,
but one client call retries by itself while the server is unavailable, and a server may
finish a cancelled request. :func:`write_horizon` bounds all of that; the relay re-sends
the keys of every job whose outcome it does not know once more after that horizon, from
a durable list (``store.resends``), so the last write of each key is a fresh read. That
includes a job that ended applied after a request of it was tried again (its ack says
``unsure``: the first try may land after the second), and a job that ended otherwise keeps
its payload key in Redis, so a relay that dies before it reads the ack leaves the next one
the job's objects to treat as suspects (the relay deletes the key once it owes the re-send).

Redis is untrusted (invariant 10): before anything else the job verifies its ticket's MAC,
then the payload against the signed digest and every collection against the signed list
(:mod:`.trust`); a job that fails a check writes nothing. Only workers of the project's
own class (:mod:`.guard`) reach this function at all: they refuse any other function a
job names before importing it.

The Weaviate client is created lazily once per worker process, after any fork (a gRPC
channel created before ``fork()`` hangs in the child), from the
:class:`~sqlite_to_weaviate.settings.WorkerSettings` variables (``S2W_WEAVIATE_URL``,
``S2W_WEAVIATE_API_KEY``, ``S2W_LEASE_SECONDS``, ...) which ``sqlite-to-weaviate worker``
exports; a plain ``rq worker`` works with the same variables set.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import rq

from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.settings import WorkerSettings
from sqlite_to_weaviate.writer.payload import Ack, JobPayload, JobTicket, PayloadError
from sqlite_to_weaviate.writer.redis_identity import identity_from_reply, still_current
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.signing import Refused
from sqlite_to_weaviate.writer.trust import WorkerTrust
from sqlite_to_weaviate.writer.weaviate_apply import (
    Fenced, RetryPolicy, RetryWitness, TransientError, apply_deletes, apply_upserts,
)

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

            settings = job_settings()
            request_timeout = request_timeout_for(settings.lease_seconds)
            api_key = settings.weaviate_api_key.reveal() if settings.weaviate_api_key else None
            self._client = WeaviateEndpoint.parse(settings.weaviate_url, api_key).connect(
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


class _ProcessTrust:
    """This worker process's checks; re-read while no job secret is available yet."""

    def __init__(self) -> None:
        self._trust: WorkerTrust | None = None

    def get(self) -> WorkerTrust:
        if self._trust is None or self._trust.signer is None:
            self._trust = WorkerTrust.from_environment()
        return self._trust


_process_trust = _ProcessTrust()


def job_settings() -> WorkerSettings:
    """This worker process's settings, from the ``S2W_*`` variables ``worker`` exports."""
    if not os.environ.get("S2W_WEAVIATE_URL"):
        raise RuntimeError("S2W_WEAVIATE_URL is not set in the worker's environment")
    return WorkerSettings.load()


def _policy_from_env(witness: RetryWitness) -> RetryPolicy:
    settings = job_settings()
    return RetryPolicy(max_retries=settings.max_retries, retry_delay=settings.retry_delay,
                       backoff_max=settings.backoff_max, witness=witness)


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
        """Raise Fenced unless this job still owns every fence its ticket names; renew the leases."""
        p = self._ticket
        now = time.monotonic()
        if self._deadline and now >= self._deadline:
            raise Fenced(f"lease of partitions {list(p.partitions)} expired locally")
        # One round trip, not a MULTI: INFO may be refused (managed Redis), which would abort a
        # MULTI. Nothing needs the atomicity: only the fence read decides, and a renewal racing
        # the relay's tombstone raced it inside a MULTI too.
        pipe = self._redis.pipeline(transaction=False)
        for partition in p.partitions:
            pipe.get(self._keys.fence(partition, p.lane))
        for partition in p.partitions:
            pipe.set(self._keys.lease(partition, p.lane), p.token, px=int(p.lease_seconds * 1000))
        if p.redis_id:
            pipe.info("server", "replication")
        replies = pipe.execute(raise_on_error=False)
        for reply in replies[: 2 * len(p.partitions)]:
            if isinstance(reply, Exception):
                raise reply
        for partition, current in zip(p.partitions, replies[: len(p.partitions)]):
            if current is None or current.decode(errors="replace") != p.token:
                raise Fenced(f"partition {partition} now belongs to job {current!r}, not {p.token}")
        identity = identity_from_reply(replies[-1]) if p.redis_id else None
        if not still_current(identity, p.redis_id):  # a failover may have restored an old fence
            raise Fenced(f"Redis was replaced since job {p.token} was dispatched (failover or restart)")
        self._deadline = now + p.lease_seconds - self._margin

    def release(self) -> None:
        p = self._ticket
        keys = [self._keys.lease(partition, p.lane) for partition in p.partitions]
        # delete only our own leases (compare-and-delete, one round trip)
        self._redis.eval(
            "for _, key in ipairs(KEYS) do if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end end "
            "return 0",
            len(keys), *keys, p.token,
        )


def apply_batch(raw_ticket: dict[str, Any]) -> dict[str, Any]:
    """RQ entry point. Returns the Ack as a dict (also pushed to the relay's ack list)."""
    started = time.monotonic()
    job = rq.get_current_job()
    redis_conn = job.connection if job is not None else None
    if redis_conn is None:
        raise RuntimeError("apply_batch must run inside an RQ job")
    trust = _process_trust.get()
    try:
        ticket = trust.open_ticket(raw_ticket)
    except Refused as exc:  # nothing of an unauthenticated ticket is used, and no ack is sent for it
        trust.events(redis_conn, trust.namespace or _queue_namespace(job)).note(exc.kind, exc.reason, job_id=job.id)
        raise
    keys = RedisKeys(ticket.namespace)
    log = get_logger("s2w.worker", batch_id=ticket.batch_id, partition=ticket.partition)
    lease = Lease(redis_conn, keys, ticket)
    rejected: dict[str, str] = {}
    outcome, error = "applied", None
    payload = JobPayload()
    retries = RetryWitness()
    try:
        trust.check_fresh(ticket)
        client = _process_client.get()
        policy = _policy_from_env(retries)
        lease.guard()
        payload = _load_payload(redis_conn, keys, ticket, trust)
        settings = job_settings()
        consistency = settings.write_consistency
        if payload.upserts:
            # vectors computed by embedders, each once (the object, the cache, then the model)
            embedded = _embed(client, redis_conn, ticket, payload.upserts, policy, lease.guard)
            rejected = apply_upserts(client, embedded.upserts, policy, lease.guard, frozenset(payload.replace),
                                     consistency, request_objects=settings.request_objects)
            rejected.update(embedded.refused)
        if payload.deletes:
            apply_deletes(client, payload.deletes, policy, lease.guard, consistency)
        lease.release()
    except Fenced as exc:
        outcome, error = "fenced", str(exc)
        log.warning("job fenced off", reason=str(exc))
    except Refused as exc:
        outcome, error = "refused", exc.reason
        trust.events(redis_conn, ticket.namespace).note(exc.kind, exc.reason, job_id=job.id)
        lease.release()
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
        seconds=round(time.monotonic() - started, 4), unsure=outcome == "applied" and retries.retried > 0,
    )
    pipe = redis_conn.pipeline(transaction=False)
    if outcome in ("applied", "refused"):  # refused: nothing was written
        pipe.delete(keys.payload(ticket.token))
    # Otherwise a write of this job may still land: the key stays, so that a relay that dies
    # before it reads this ack leaves the objects to the next one as suspects. The relay
    # deletes it once it owes the re-send (or the TTL reaps it).
    pipe.rpush(keys.acks, trust.signer.seal_ack(ack))  # open_ticket succeeded, so there is a signer
    pipe.execute()
    log.info("job done", outcome=outcome, upserts=len(payload.upserts), deletes=len(payload.deletes),
             rejected=len(rejected), seconds=ack.seconds, retried=retries.retried)
    # which objects, for tracing one object through a run (the soak prints these when it fails);
    # the lists are built only when DEBUG is on: this runs for every job
    if log.is_enabled_for(logging.DEBUG):
        log.debug("job objects", token=ticket.token, outcome=outcome, retried=retries.retried,
                  upserts=[str(o["uuid"]) for o in payload.upserts], deletes=[d.uuid for d in payload.deletes],
                  replace=sorted(payload.replace))
    return ack.__dict__


def _embed(client: Any, redis_conn: Any, ticket: JobTicket, upserts: list[dict[str, Any]], policy: RetryPolicy,
           guard: Any) -> Any:
    """sqlite_to_weaviate.writer.embedding for this job; its hand-backs are transient."""
    from sqlite_to_weaviate.writer.embedding import EmbedHandBack, embed_upserts

    try:
        return embed_upserts(client, redis_conn, ticket.namespace, upserts, embedders=_process_embedders.get(),
                             guard=guard, run=lambda call: policy.run(call, guard=guard),
                             slice_seconds=ticket.lease_seconds / 6)
    except EmbedHandBack as exc:
        raise TransientError(str(exc)) from None


class _ProcessEmbedders:
    """This worker process's embedders (models load once; the mapping file is re-read when it changes)."""

    def __init__(self) -> None:
        self._embedders: Any = None

    def get(self) -> Any:
        if self._embedders is None:
            from sqlite_to_weaviate.writer.embedding import WorkerEmbedders

            settings = job_settings()
            self._embedders = WorkerEmbedders(str(settings.mapping_file) if settings.mapping_file else None,
                                              settings.collection_prefix, settings.replication_factor)
        return self._embedders


_process_embedders = _ProcessEmbedders()


def _load_payload(redis_conn: Any, keys: RedisKeys, ticket: JobTicket, trust: WorkerTrust) -> JobPayload:
    raw = redis_conn.get(keys.payload(ticket.token))
    if raw is None:
        # The fence still names this job, so Redis lost the key (evicted, or expired while
        # the job waited for a worker longer than the payload TTL): hand the job back.
        raise PayloadError(f"the payload of job {ticket.token} is gone from Redis")
    return trust.open_payload(ticket, raw)


def _queue_namespace(job: Any) -> str:
    """The namespace of the queue a job came from (for counting a refusal of a forged ticket)."""
    origin = str(getattr(job, "origin", "") or "")
    return origin.removesuffix(".bulk").removesuffix(".apply") or "s2w"
