"""The relay's only door to Redis and RQ: send jobs, receive acks, look at leases.

Redis is a work queue and an untrusted one (invariants 7 and 10): everything read from it
is checked (acks carry a MAC, a malformed job hash counts as a vanished job), and nothing
in it is the source of truth — losing all of it costs a re-send. A job is three keys
written in one MULTI: its payload (the rows, orjson), the fence of the partition lane or
live slot it holds (the one token allowed to write), and the RQ job, which carries only a signed ticket naming the
payload. Live and bulk jobs go to two queues that workers take in that order.

A Sentinel failover or a restart can replace Redis with a data set that lacks the last
writes while the sentinel key survives; the transport watches Redis's replication
identity (:mod:`.redis_identity`), reports a change as a wipe, and stamps every ticket
with the identity it was sent under, so a worker refuses a job a failover brought back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.serializers import JSONSerializer

from sqlite_to_weaviate.writer.job import JOB_FUNCTION
from sqlite_to_weaviate.writer.payload import PAYLOAD_TTL_SECONDS, TICKET_TTL_SECONDS, Ack, JobPayload, JobTicket
from sqlite_to_weaviate.writer.redis_identity import FailoverWatch, identity_from_reply
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.scheduler import BULK, LANES, LIVE, Job
from sqlite_to_weaviate.writer.signing import ForgedAck, JobSigner, payload_digest
from sqlite_to_weaviate.writer.trust import SecurityEvents

REGISTRY_CLEANUP_S = 15.0


@dataclass(frozen=True)
class Outgoing:
    """A job ready to send: the scheduler's job and the payload built from the rows."""

    job: Job
    payload: bytes
    upserts: int
    deletes: int


@dataclass(frozen=True)
class Glance:
    """What a relay pass reads from Redis first: whether Redis is still the one it wrote to,
    and the acknowledgements waiting."""

    sentinel: str | None   # the run id that last set the sentinel; None: Redis lost it
    replaced: str | None   # why Redis is another data set now (failover, restart); None while it is not
    acks: list[Ack]        # only those whose MAC verifies


class Transport:
    def __init__(self, redis: Any, namespace: str, signer: JobSigner, *, lease_seconds: float, job_timeout: int,
                 failure_ttl: int, collections: Iterable[str]) -> None:
        self.redis = redis
        self.keys = RedisKeys(namespace)
        self.namespace = namespace
        self.signer = signer
        self.lease_seconds = lease_seconds
        self.job_timeout = job_timeout
        self.failure_ttl = failure_ttl
        self.collections = tuple(sorted(collections))
        self.queues = {LIVE: Queue(self.keys.queue, connection=redis, serializer=JSONSerializer),
                       BULK: Queue(self.keys.bulk_queue, connection=redis, serializer=JSONSerializer)}
        self.security = SecurityEvents(redis, self.keys)
        self.forged_acks = 0
        self.identity = FailoverWatch()
        self._last_cleanup = 0.0

    # ------------------------------------------------------------------ the sentinel and fences
    def glance(self, ack_limit: int = 1000) -> Glance:
        """The sentinel, Redis's replication identity and the waiting acks, in one round trip.

        Every relay pass starts here, so this is the relay's most frequent Redis call (it
        used to be three). The acks are popped after the sentinel is read, in the same
        pipeline: the relay handles a wipe before any ack, as it did when they were
        separate calls.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.sentinel)
        pipe.info("server", "replication")
        pipe.lpop(self.keys.acks, ack_limit)
        sentinel, info, raw_acks = pipe.execute(raise_on_error=False)
        for result in (sentinel, raw_acks):
            if isinstance(result, Exception):
                raise result
        replaced = self.identity.observe(identity_from_reply(info))  # None: INFO refused, detection off
        return Glance(None if sentinel is None else sentinel.decode(errors="replace"), replaced,
                      self.open_acks(raw_acks or []))

    def fence_all(self, partitions: int, run_id: str) -> list[tuple[int, str, float]]:
        """Fence every partition lane and live slot (jobs queued by an earlier run write
        nothing), set the sentinel, and return (number, lane, seconds its lease is still held)
        for leased ones.

        "Every" includes the lanes an earlier run had and this one does not: a run started
        with fewer ``partitions`` finds their fence keys in Redis, and a job of theirs still
        queued or still writing must be fenced off like any other."""
        pipe = self.redis.pipeline()
        slots = [(p, lane) for p in range(partitions) for lane in LANES]
        slots += sorted(lane for lane in self._fenced_lanes() if lane[0] >= partitions)
        for p, lane in slots:
            pipe.set(self.keys.fence(p, lane), f"{run_id}-start")
            pipe.pttl(self.keys.lease(p, lane))
        pipe.set(self.keys.sentinel, run_id)
        results = pipe.execute()
        return [(p, lane, ttl_ms / 1000) for (p, lane), ttl_ms in zip(slots, results[1::2])
                if isinstance(ttl_ms, int) and ttl_ms > 0]

    def _fenced_lanes(self) -> set[tuple[int, str]]:
        """(number, lane) of every fence key in Redis (names that do not parse are not ours)."""
        prefix = self.keys.fence(0, LIVE).removesuffix("0")
        found: set[tuple[int, str]] = set()
        for key in self.redis.scan_iter(match=prefix + "*", count=1000):
            number, _, lane = key.decode(errors="replace").removeprefix(prefix).partition(":")
            lane = lane or LIVE
            if number.isascii() and number.isdigit() and lane in LANES and self.keys.fence(int(number), lane) == key.decode(errors="replace"):
                found.add((int(number), lane))
        return found

    def earlier_payloads(self) -> tuple[set[str], list[bytes]]:
        """Object ids of jobs an earlier run never saw acknowledged (their payload keys remain)."""
        ids: set[str] = set()
        names: list[bytes] = []
        for key in self.redis.scan_iter(match=self.keys.payload("*"), count=1000):
            raw = self.redis.get(key)
            if raw is None:
                continue
            try:
                ids.update(JobPayload.loads(raw).object_ids())
            except ValueError:
                pass  # unreadable: its objects are re-sent with everything unacknowledged anyway
            names.append(key)
        return ids, names

    def delete_keys(self, names: list[bytes]) -> None:
        if names:
            self.redis.delete(*names)

    # ------------------------------------------------------------------ jobs
    def job_id(self, job: Job) -> str:
        return f"{self.namespace}-p{job.partition}-{job.token}"

    def send(self, outgoing: list[Outgoing], *, retire: Iterable[tuple[int, str]] = ()) -> None:
        """The jobs of one send in one MULTI (the relay sends a pass's live jobs, then its
        history job): payload, fence, then the signed ticket; first the
        tombstones of ``retire``, fences (number, lane) of jobs that ended without an answer
        (the slot's next job, if it is in this MULTI, sets its own token after them)."""
        retire = list(retire)
        if not outgoing and not retire:
            return
        pipe = self.redis.pipeline()
        pipe.multi()  # before any command: RQ's enqueue calls multi() itself otherwise, and fails
        for number, lane in retire:
            pipe.set(self.keys.fence(number, lane), "retired")
        for out in outgoing:
            job = out.job
            ticket = JobTicket(batch_id=job.batch_id, namespace=self.namespace, partitions=job.partitions,
                               token=job.token, lease_seconds=self.lease_seconds, collections=self.collections,
                               payload_sha256=payload_digest(out.payload), expires_at=time.time() + TICKET_TTL_SECONDS,
                               lane=job.lane, redis_id=self.identity.fingerprint or "")
            pipe.set(self.keys.payload(job.token), out.payload, ex=PAYLOAD_TTL_SECONDS)
            for partition in job.partitions:
                pipe.set(self.keys.fence(partition, job.lane), job.token)
            self.queues[job.lane].enqueue_call(
                JOB_FUNCTION, args=(self.signer.sign_ticket(ticket),), job_id=self.job_id(job),
                timeout=self.job_timeout, result_ttl=60, failure_ttl=self.failure_ttl, ttl=None,
                description=f"apply {job.lane} batch {job.batch_id} to partitions {list(job.partitions)}",
                meta={"batch_id": job.batch_id, "partitions": list(job.partitions), "lane": job.lane}, pipeline=pipe,
            )
        pipe.execute()

    def drop_payloads(self, tokens: Iterable[str]) -> None:
        """A lost job that a worker picks up late finds nothing to write."""
        names = [self.keys.payload(t) for t in tokens]
        if names:
            self.redis.delete(*names)

    # ------------------------------------------------------------------ acks
    def wait_ack(self, timeout: float) -> list[Ack]:
        item = self.redis.blpop([self.keys.acks], timeout=timeout)
        return self.open_acks([item[1]]) if item is not None else []

    def open_acks(self, raw: list[bytes]) -> list[Ack]:
        """A forged "applied" ack would settle work that never reached Weaviate: ignored, counted."""
        out = []
        for item in raw:
            try:
                out.append(self.signer.open_ack(item))
            except ForgedAck as exc:
                self.forged_acks += 1
                self.security.note("forged_ack", f"ack ignored: {exc}")
        return out

    # ------------------------------------------------------------------ leases
    def leases(self, jobs: list[Job]) -> list[str | None]:
        """The token holding each job's lease now (None: nobody). A job's worker renews every
        lease its ticket names in one round trip (one, from this relay), so the first speaks
        for the job."""
        pipe = self.redis.pipeline()
        for job in jobs:
            pipe.get(self.keys.lease(job.partition, job.lane))
        return [None if v is None else v.decode(errors="replace") for v in pipe.execute()]

    def job_status(self, job: Job) -> str | None:
        """The RQ status of ``job`` (None: gone, or a job hash someone overwrote in Redis)."""
        import redis as redis_lib

        try:
            status = RQJob.fetch(self.job_id(job), connection=self.redis, serializer=JSONSerializer).get_status(
                refresh=False)
        except NoSuchJobError:
            return None
        except redis_lib.RedisError:
            raise
        except Exception:  # noqa: BLE001 - vandalised job hash (invariant 10): treat as vanished
            return None
        return None if status is None else str(getattr(status, "value", status))

    # ------------------------------------------------------------------ housekeeping
    def publish(self, snapshot: dict[str, Any]) -> None:
        self.redis.set(self.keys.relay_status, json.dumps(snapshot, default=str), ex=30)

    def cleanup(self, now: float) -> None:
        """Let RQ move jobs of dead workers out of its started registries (every 15 s)."""
        if now - self._last_cleanup < REGISTRY_CLEANUP_S:
            return
        self._last_cleanup = now
        for queue in self.queues.values():
            queue.started_job_registry.cleanup()

    def close(self) -> None:
        self.redis.close()
