"""The JSON document one RQ job carries from the relay to a worker, and the ack coming back.

A job holds complete object images (read from SQLite at dispatch) and deletes, at most
one operation per object id, so a worker can apply them in any order and concurrently
without reordering two changes to one object. Primary keys never travel: the relay keeps
them and maps a worker's per-uuid failures back to rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class Delete:
    collection: str
    uuid: str
    tenant: str | None = None


@dataclass(frozen=True)
class JobPayload:
    batch_id: str
    namespace: str
    partition: int
    token: str
    lease_seconds: float
    upserts: list[dict[str, Any]] = field(default_factory=list)  # WeaviateObject.to_json()
    deletes: list[Delete] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": PAYLOAD_VERSION, "batch_id": self.batch_id, "namespace": self.namespace,
            "partition": self.partition, "token": self.token, "lease_seconds": self.lease_seconds,
            "upserts": self.upserts,
            "deletes": [[d.collection, d.uuid, d.tenant] for d in self.deletes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "JobPayload":
        if data.get("v") != PAYLOAD_VERSION:
            raise ValueError(f"job payload version {data.get('v')!r} is not {PAYLOAD_VERSION}: upgrade the worker")
        return cls(
            batch_id=data["batch_id"], namespace=data["namespace"], partition=int(data["partition"]),
            token=data["token"], lease_seconds=float(data["lease_seconds"]), upserts=list(data["upserts"]),
            deletes=[Delete(c, u, t) for c, u, t in data["deletes"]],
        )


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
