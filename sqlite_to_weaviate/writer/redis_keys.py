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
        """The RQ queue workers listen on."""
        return f"{self.namespace}.apply"

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

    def fence(self, partition: int) -> str:
        """Token of the one job currently allowed to write for ``partition``."""
        return f"{self.namespace}:fence:{partition}"

    def payload(self, token: str) -> str:
        """The rows of the job with fence token ``token`` (see writer.payload)."""
        return f"{self.namespace}:payload:{token}"

    def lease(self, partition: int) -> str:
        """Held (with a TTL) by the worker applying ``partition``'s job; renewed while it works."""
        return f"{self.namespace}:lease:{partition}"
