"""What travels from the relay to a worker, and the ack coming back.

A job is split in two. The RQ job carries only a small :class:`JobTicket` (which
partitions, which fence token); the rows themselves, a :class:`JobPayload`, sit in their
own Redis key beside it. RQ compresses, re-serializes and ``repr``s a job's arguments
several times on its way through a worker (enqueue, start, success); with 200 full
object images per job that was over half of the relay's and the workers' CPU. The
payload is encoded once with orjson and read once by the worker.

Redis is untrusted (invariant 10): the relay signs every ticket, the ticket binds its
payload by SHA-256 digest and names the collections the mapping allows, and workers sign
their acks (:mod:`.signing`); a worker verifies all of it before writing anything.

A payload holds complete object images (read from SQLite at dispatch) and deletes, at
most one operation per object id, so a worker can apply them in any order and
concurrently without reordering two changes to one object. Primary keys never travel:
the relay keeps them and maps a worker's per-uuid failures back to rows.

``replace`` names upserts whose previous write had an unknown outcome (a timed-out or
crashed request, a lost job): Weaviate can keep such an object half-written, stored but
missing from its index, and an upsert of the same content does not repair the index. The
worker deletes these objects by id before inserting them again (docs/architecture.md,
invariant 3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

TICKET_VERSION = 6  # 6: redis_id (the Redis identity a job was dispatched under)
# A ticket names at most this many fences (this relay sends one: a partition or a live slot; an
# earlier version's live job named every partition it had keys of).
MAX_TICKET_PARTITIONS = 4096
# A Redis identity is "<run_id>/<master_replid>", 40 hex characters each (writer.redis_identity).
MAX_REDIS_ID_LENGTH = 256
# A payload key outlives any job that can still legitimately read it: its worker deletes it
# when the job applied (or wrote nothing), the relay when it owes the keys of a job that
# failed or was declared lost; the TTL only reaps keys of a relay that died.
PAYLOAD_TTL_SECONDS = 24 * 3600
# A signed ticket is honoured for this long after the relay issued it: it bounds how long a
# copy of a genuine job could be replayed through Redis. A job that waited longer for a
# worker is refused as expired and the relay re-sends its keys with a fresh ticket.
TICKET_TTL_SECONDS = 3600


class PayloadError(ValueError):
    """A ticket or payload this worker cannot read (version skew or corruption)."""


@dataclass(frozen=True)
class Delete:
    collection: str
    uuid: str
    tenant: str | None = None


@dataclass(frozen=True)
class JobTicket:
    """The RQ job's one argument: enough to find the payload and to check the fences.

    ``redis_id`` is the identity of the Redis the relay dispatched the job to
    (:mod:`.redis_identity`; "" when that Redis refuses ``INFO``): a worker that finds
    another identity when it checks its fences hands the job back (a failover may have
    brought back a job, and a fence, that the relay has since replaced).
    """

    batch_id: str
    namespace: str
    partitions: tuple[int, ...]       # the partition lanes / live slots it holds (fenced with its token)
    token: str
    lease_seconds: float
    collections: tuple[str, ...] = ()  # the mapped collections: a payload may write only these
    payload_sha256: str = ""           # digest of the payload key's bytes
    expires_at: float = 0.0            # unix time after which workers refuse the ticket
    lane: str = "live"                 # "live" (fence of a live slot) or "bulk" (of a partition)
    redis_id: str = ""                 # the Redis identity it was dispatched under ("": unknown)

    @property
    def partition(self) -> int:
        """The first fence it names (its partition or live slot): the ack names the job by it."""
        return self.partitions[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "v": TICKET_VERSION, "batch_id": self.batch_id, "namespace": self.namespace,
            "partitions": list(self.partitions), "token": self.token, "lease_seconds": self.lease_seconds,
            "collections": list(self.collections), "payload_sha256": self.payload_sha256,
            "expires_at": self.expires_at, "lane": self.lane, "redis_id": self.redis_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "JobTicket":
        if not isinstance(data, dict) or data.get("v") != TICKET_VERSION:
            version = data.get("v") if isinstance(data, dict) else type(data).__name__
            raise PayloadError(f"job ticket version {version!r} is not {TICKET_VERSION}: "
                               "run the same sqlite-to-weaviate version in the relay and the workers")
        try:
            collections = data["collections"]
            if not isinstance(collections, list) or not all(isinstance(c, str) for c in collections):
                raise TypeError("collections must be a list of names")
            partitions = data["partitions"]
            if not isinstance(partitions, list) or not all(type(p) is int for p in partitions):
                raise TypeError("partitions must be a list of integers")
            redis_id = data["redis_id"]
            if not isinstance(redis_id, str) or len(redis_id) > MAX_REDIS_ID_LENGTH:
                raise TypeError(f"redis_id must be a string of at most {MAX_REDIS_ID_LENGTH} characters")
            ticket = cls(batch_id=str(data["batch_id"]), namespace=str(data["namespace"]),
                         partitions=tuple(partitions), token=str(data["token"]),
                         lease_seconds=float(data["lease_seconds"]), collections=tuple(collections),
                         payload_sha256=str(data["payload_sha256"]), expires_at=float(data["expires_at"]),
                         lane=str(data["lane"]), redis_id=redis_id)
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"job ticket is malformed: {type(exc).__name__}: {exc}") from None
        if not ticket.lease_seconds > 0:
            raise PayloadError("job ticket is malformed: the lease must be positive")
        parts = ticket.partitions
        if not 0 < len(parts) <= MAX_TICKET_PARTITIONS or len(set(parts)) != len(parts) or min(parts) < 0:
            raise PayloadError(f"job ticket is malformed: partitions must be 1 to {MAX_TICKET_PARTITIONS} distinct "
                               "non-negative numbers")
        if ticket.lane not in ("live", "bulk"):
            raise PayloadError(f"job ticket is malformed: lane {ticket.lane!r} is not live or bulk")
        return ticket


@dataclass(frozen=True)
class JobPayload:
    upserts: list[dict[str, Any]] = field(default_factory=list)  # WeaviateObject.to_json()
    deletes: list[Delete] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)  # uuids of upserts to delete by id first

    def dumps(self) -> bytes:
        return orjson.dumps({"upserts": self.upserts, "replace": self.replace,
                             "deletes": [[d.collection, d.uuid, d.tenant] for d in self.deletes]})

    def object_ids(self) -> list[str]:
        """Every object id this payload writes (upserts and deletes)."""
        return [str(o["uuid"]) for o in self.upserts] + [d.uuid for d in self.deletes]

    @classmethod
    def loads(cls, raw: bytes) -> "JobPayload":
        try:
            data = orjson.loads(raw)
            return cls(upserts=list(data["upserts"]), deletes=[Delete(c, u, t) for c, u, t in data["deletes"]],
                       replace=[str(u) for u in data.get("replace") or []])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"job payload is not readable: {exc}") from exc


@dataclass(frozen=True)
class Ack:
    """What a worker reports: applied, fenced off (superseded), or failed transiently.

    ``rejected`` maps object uuid -> Weaviate's reason for rows it refused permanently
    (they go to the dead-letter table; the rest of the batch landed). ``unsure``: applied,
    but a request was tried again after a failure that may still land (``RetryWitness``);
    left out of the JSON when false, so acks of jobs without retries read as before.
    """

    batch_id: str
    partition: int
    token: str
    outcome: str  # "applied" | "fenced" | "transient" | "refused" (a check of writer.trust failed)
    rejected: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None
    seconds: float = 0.0
    unsure: bool = False

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        if not self.unsure:
            del data["unsure"]
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Any) -> "Ack":
        """An ack from decoded JSON, every field type-checked (it came through Redis)."""
        if not isinstance(data, dict):
            raise PayloadError(f"an ack must be a JSON object, not {type(data).__name__}")
        try:
            ack = cls(**data)
        except TypeError as exc:
            raise PayloadError(f"ack has unexpected fields: {exc}") from None
        checks = (
            isinstance(ack.batch_id, str), type(ack.partition) is int, isinstance(ack.token, str),
            ack.outcome in ACK_OUTCOMES, isinstance(ack.rejected, dict),
            all(isinstance(k, str) and isinstance(v, str) for k, v in ack.rejected.items()),
            ack.error is None or isinstance(ack.error, str), ack.worker is None or isinstance(ack.worker, str),
            isinstance(ack.seconds, (int, float)) and not isinstance(ack.seconds, bool),
            type(ack.unsure) is bool,
        )
        if not all(checks):
            raise PayloadError("ack has a field of the wrong type")
        return ack

    @classmethod
    def loads(cls, raw: bytes | str) -> "Ack":
        try:
            data = json.loads(raw)
        except (ValueError, TypeError) as exc:
            raise PayloadError(f"ack is not JSON: {exc}") from None
        return cls.from_json(data)


ACK_OUTCOMES = ("applied", "fenced", "transient", "refused")
