"""Names of everything the pipeline keeps in Redis, derived from one namespace.

Several pipelines (or parallel tests) can share one Redis because every key and queue
name starts with the namespace. Nothing under these keys is the source of truth: losing
all of them costs a re-send, never data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    namespace: str

    @property
    def queue(self) -> str:
        """The RQ queue of live jobs (workers take it first)."""
        return f"{self.namespace}.apply"

    @property
    def bulk_queue(self) -> str:
        """The RQ queue of bulk jobs (history, repairs): taken when no live job waits."""
        return f"{self.namespace}.apply.bulk"

    def queues(self) -> list[str]:
        """Every queue, in the order workers take them (live first)."""
        return [self.queue, self.bulk_queue]

    @property
    def acks(self) -> str:
        """List the workers push one JSON acknowledgement per finished job onto."""
        return f"{self.namespace}:acks"

    @property
    def sentinel(self) -> str:
        """Set by the relay; its absence means Redis lost its memory (restart, flush)."""
        return f"{self.namespace}:sentinel"

    @property
    def relay_status(self) -> str:
        """JSON snapshot of the relay's in-memory state, for ``status``."""
        return f"{self.namespace}:relay-status"

    @property
    def security(self) -> str:
        """Hash of refusal counters (kind -> count) and the last refusal, for ``status``."""
        return f"{self.namespace}:security"

    def fence(self, partition: int, lane: str = "live") -> str:
        """Token of the one job currently allowed to write for ``partition``'s bulk lane, or for
        live slot ``partition`` (``lane="live"``); ``"retired"`` once its job ended unanswered."""
        return f"{self.namespace}:fence:{partition}" + ("" if lane == "live" else f":{lane}")

    def payload(self, token: str) -> str:
        """The rows of the job with fence token ``token`` (see writer.payload)."""
        return f"{self.namespace}:payload:{token}"

    def lease(self, partition: int, lane: str = "live") -> str:
        """Held (with a TTL) by the worker applying the job of ``partition``'s bulk lane or of
        live slot ``partition``; renewed while it works."""
        return f"{self.namespace}:lease:{partition}" + ("" if lane == "live" else f":{lane}")
