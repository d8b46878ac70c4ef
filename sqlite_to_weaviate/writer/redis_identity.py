"""Notice that Redis is no longer the data set we were writing to: a failover, or a restart.

The relay detects a wiped Redis by its sentinel key. A Sentinel failover defeats that
check: the key was replicated long ago and survives, but Redis replication is
asynchronous, so the promoted replica can lack the last writes the old primary
acknowledged, i.e. enqueued jobs, fence tokens, acks (measured: a key and 10 jobs written with
``WAIT 1`` answering 0 were gone after the failover, and jobs whose completion was not
replicated ran a second time). A restart from an older snapshot does the same.

Both change the server's replication identity, which this module reads from ``INFO``:
``master_replid`` is replaced whenever a replica is promoted (the old one moves to
``master_replid2``), and ``run_id`` is new on every start of the server process. The relay
treats any change as a wipe (``Relay._check_sentinel``): it re-sends every job in flight
and re-fences every partition and live slot, so a job restored by the failover writes
nothing. A graceful failover loses nothing but changes the id as well; telling the two
apart would need the old primary's last offset, which left with it, and the cost of the
mistake is re-sending the jobs that were in flight.

The relay also stamps each job with the identity it was dispatched under
(``JobTicket.redis_id``); a worker that finds a different identity when it checks its
fence hands the job back instead of writing. That closes the window between the
failover and the relay's next pass, in which a job the failover brought back could
otherwise overwrite a newer write with its older rows.

A Redis that refuses ``INFO`` (some managed services rename it) has no identity: the
check is then off, the relay logs it once, and the sentinel key is the only wipe
detection, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_to_weaviate.logs import get_logger


@dataclass(frozen=True)
class RedisIdentity:
    """Who answers: the server process (``run_id``) and the data set's replication history."""

    run_id: str
    replid: str
    replid2: str = ""
    offset: int = 0
    second_offset: int = -1

    @property
    def fingerprint(self) -> str:
        """Changes on a promotion (failover) and on every restart of the server process."""
        return f"{self.run_id}/{self.replid}"


def parse_identity(info: dict[str, Any]) -> RedisIdentity | None:
    """From ``INFO server replication`` as redis-py parses it; None if the fields are missing.

    redis-py turns all-digit values into ints (an unused ``master_replid2`` of forty
    zeros reads as 0), so every id is compared as a string.
    """
    run_id, replid = info.get("run_id"), info.get("master_replid")
    if run_id is None or replid is None:
        return None
    return RedisIdentity(
        run_id=str(run_id), replid=str(replid), replid2=str(info.get("master_replid2", "")),
        offset=int(info.get("master_repl_offset", 0) or 0), second_offset=int(info.get("second_repl_offset", -1)),
    )


def read_identity(client: Any) -> RedisIdentity | None:
    """The identity of the Redis ``client`` talks to now; None when ``INFO`` is refused.

    Connection errors propagate (Redis down is an outage, handled by the caller's backoff).
    """
    import redis

    try:
        info = client.info("server", "replication")
    except redis.ResponseError:
        return None
    return parse_identity(info)


def describe_change(old: RedisIdentity, new: RedisIdentity) -> str:
    """Why the identity changed, in words for the log."""
    if new.replid2 == old.replid:
        return (f"a replica was promoted (failover): it had the old primary's writes up to offset "
                f"{new.second_offset - 1}; we last saw offset {old.offset}, anything after it may be lost")
    if new.run_id != old.run_id:
        return "the Redis server restarted (new run_id): writes since its last save may be lost"
    return "the Redis data set changed (new replication id)"


class FailoverWatch:
    """The identity the relay last wrote to; :meth:`check` reports a change until the relay
    says it handled it (:meth:`confirm`).

    Adopting the new identity only then matters: the relay handles a change like a wipe
    (fences every lane, sets the sentinel), and if Redis fails in the middle of that, the
    next pass must see the change again, not a Redis that looks like the one it knew.
    """

    def __init__(self) -> None:
        self.current: RedisIdentity | None = None
        self.available = True
        self._said_unavailable = False
        self._pending: RedisIdentity | None = None

    @property
    def fingerprint(self) -> str | None:
        """What the relay stamps on the jobs it dispatches (None: detection is off)."""
        return self.current.fingerprint if self.current is not None else None

    def check(self, client: Any) -> str | None:
        """None while Redis is the data set seen before; else why it is not (then remembered)."""
        return self.observe(read_identity(client))

    def observe(self, identity: RedisIdentity | None) -> str | None:
        """:meth:`check` with the identity already read (None: ``INFO`` refused), e.g. in a pipeline."""
        self.available = identity is not None
        if identity is None:
            if not self._said_unavailable:
                get_logger("s2w.relay").warning(
                    "redis refuses INFO: a failover that loses writes cannot be told from normal operation; "
                    "only a wipe (sentinel key gone) is detected")
                self._said_unavailable = True
            return None
        previous = self.current
        if previous is None or previous.fingerprint == identity.fingerprint:
            self.current, self._pending = identity, None
            return None
        self._pending = identity
        return describe_change(previous, identity)

    def confirm(self) -> None:
        """The change last reported is handled: from now on Redis is the new data set."""
        if self._pending is not None:
            self.current, self._pending = self._pending, None


def identity_from_reply(reply: Any) -> RedisIdentity | None:
    """The identity in an ``INFO server replication`` reply read in a pipeline executed with
    ``raise_on_error=False`` (so it shares a round trip); None when Redis refused ``INFO``.
    Any other error is raised, as :func:`read_identity` lets it propagate."""
    import redis

    if isinstance(reply, redis.ResponseError):
        return None
    if isinstance(reply, Exception):
        raise reply
    return parse_identity(reply)


def still_current(identity: RedisIdentity | None, fingerprint: str | None) -> bool:
    """For a worker: False when the job was dispatched (under ``fingerprint``) to a Redis that
    has since been replaced; ``identity`` is what Redis says now (None: it refuses ``INFO``)."""
    return not fingerprint or identity is None or identity.fingerprint == fingerprint
