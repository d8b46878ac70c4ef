"""What travels from the relay to a worker, and the ack coming back.

A job is split in two. The RQ job carries only a small :class:`JobTicket` (which
partition, which fence token); the rows themselves, a :class:`JobPayload`, sit in their
own Redis key beside it. RQ compresses, re-serializes and ``repr``s a job's arguments
several times on its way through a worker (enqueue, start, success); with 200 full
object images per job that was over half of the relay's and the workers' CPU. The
payload is encoded once with orjson and read once by the worker.

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

TICKET_VERSION = 2
# A payload key outlives any job that can still legitimately read it: it is deleted when
# its job finishes or is declared lost; the TTL only reaps keys of a relay that died.
PAYLOAD_TTL_SECONDS = 24 * 3600


class PayloadError(ValueError):
    """A ticket or payload this worker cannot read (version skew or corruption)."""


@dataclass(frozen=True)
class Delete:
    collection: str
    uuid: str
    tenant: str | None = None


@dataclass(frozen=True)
class JobTicket:
    """The RQ job's one argument: enough to find the payload and to check the fence.

    ``redis_id``: the identity of the Redis the job was dispatched to
    (``writer.redis_identity``); optional, so tickets without it stay readable both ways.
    """

    batch_id: str
    namespace: str
    partition: int
    token: str
    lease_seconds: float
    redis_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "v": TICKET_VERSION, "batch_id": self.batch_id, "namespace": self.namespace,
            "partition": self.partition, "token": self.token, "lease_seconds": self.lease_seconds,
        }
        if self.redis_id:
            data["redis_id"] = self.redis_id
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "JobTicket":
        if not isinstance(data, dict) or data.get("v") != TICKET_VERSION:
            version = data.get("v") if isinstance(data, dict) else type(data).__name__
            raise PayloadError(f"job ticket version {version!r} is not {TICKET_VERSION}: "
                               "run the same sqlite-to-weaviate version in the relay and the workers")
        return cls(batch_id=data["batch_id"], namespace=data["namespace"], partition=int(data["partition"]),
                   token=data["token"], lease_seconds=float(data["lease_seconds"]),
                   redis_id=str(data["redis_id"]) if data.get("redis_id") else None)


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
    (they go to the dead-letter table; the rest of the batch landed).
    """

    batch_id: str
    partition: int
    token: str
    outcome: str  # "applied" | "fenced" | "transient"
    rejected: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None
    seconds: float = 0.0

    def dumps(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: bytes | str) -> "Ack":
        return cls(**json.loads(raw))
