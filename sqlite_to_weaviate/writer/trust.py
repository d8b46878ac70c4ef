"""What a worker checks before it writes anything, and how refusals are counted.

Everything a worker is handed comes through Redis, which this project treats as
untrusted (invariant 10): whoever can write to Redis may delay work, never direct it.
Before the first request to Weaviate a worker therefore checks, in this order:

1. the ticket's MAC (:mod:`.signing`) — nothing of a ticket that fails is used, not even
   its namespace or token, and no ack is sent for it;
2. that the ticket belongs to this worker's namespace and has not expired;
3. after reading the payload key: its SHA-256 digest against the signed one, and that
   every collection it writes to is in the signed list of mapped collections and, when
   the worker was given one (``worker --allow-collection``, ``S2W_ALLOWED_COLLECTIONS``),
   in its own allow-list.

A failed check writes nothing, is logged and counted in the namespace's security hash
(``status`` and ``/healthz`` report it). Counting goes through :class:`SecurityEvents`,
which folds a flood of events into at most one Redis write per second.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.sqlite_db import sqlite_path_from_url
from sqlite_to_weaviate.writer.job_secret import ENV_VAR, worker_job_secret
from sqlite_to_weaviate.writer.payload import JobPayload, JobTicket, PayloadError
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.signing import JobSigner, Refused, payload_digest
from sqlite_to_weaviate.weaviate_adapter import Secret

ALLOWED_COLLECTIONS_ENV = "S2W_ALLOWED_COLLECTIONS"
NAMESPACE_ENV = "S2W_NAMESPACE"
LAST_EVENT_FIELD = "last"
# Refusals that mean an attack or a misconfiguration (not a job that merely waited too long).
ALARMING = frozenset({"foreign_function", "forged_ticket", "bad_ticket", "foreign_namespace", "payload_mismatch",
                      "foreign_collection", "forged_ack", "no_secret", "unreadable_job"})


def parse_collections(text: str | None) -> frozenset[str] | None:
    """``"A, B"`` -> {"A", "B"}; empty or None -> None (no local allow-list)."""
    names = frozenset(n.strip() for n in (text or "").split(",") if n.strip())
    return names or None


class SecurityEvents:
    """Counts refusals in ``<namespace>:security`` (a hash: kind -> count, plus the last event)."""

    def __init__(self, redis_conn: Any, keys: RedisKeys, *, flush_every: float = 1.0) -> None:
        self._redis = redis_conn
        self._keys = keys
        self._flush_every = flush_every
        self._pending: Counter[str] = Counter()
        self._last: dict[str, Any] | None = None
        self._flushed_at = 0.0
        self.log = get_logger("s2w.security", namespace=keys.namespace)

    def note(self, kind: str, reason: str, **context: Any) -> None:
        first = not self._pending
        self._pending[kind] += 1
        self._last = {"at": time.time(), "kind": kind, "reason": reason[:300]}
        if first:
            self.log.error("refused", kind=kind, reason=reason[:300], **context)
        if time.monotonic() - self._flushed_at >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        counts, last = dict(self._pending), self._last
        self._pending.clear()
        self._flushed_at = time.monotonic()
        if sum(counts.values()) > 1:
            self.log.error("refusals", counts=counts)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for kind, n in counts.items():
                pipe.hincrby(self._keys.security, kind, n)
            pipe.hset(self._keys.security, LAST_EVENT_FIELD, json.dumps(last))
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - counting must never stop the worker or the relay
            self.log.warning("could not record refusals in redis", error=f"{type(exc).__name__}: {exc}")


def read_security(redis_conn: Any, keys: RedisKeys) -> tuple[dict[str, int], dict[str, Any] | None]:
    """(kind -> count, last event) as stored in Redis (untrusted: parsed defensively)."""
    try:
        raw = redis_conn.hgetall(keys.security) or {}
    except redis.ResponseError:  # the key holds another type: someone wrote it; nothing to report
        return {}, None
    counts: dict[str, int] = {}
    last = None
    for k, v in raw.items():
        name = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
        if name == LAST_EVENT_FIELD:
            try:
                parsed = json.loads(v)
                last = parsed if isinstance(parsed, dict) else None
            except (TypeError, ValueError):
                last = None
            continue
        try:
            counts[name] = int(v)
        except (TypeError, ValueError):
            continue
    return counts, last


@dataclass
class WorkerTrust:
    """The checks of one worker process (secret, namespace, allow-list), built from its environment."""

    signer: JobSigner | None
    namespace: str | None
    allowed: frozenset[str] | None = None
    _events: dict[str, SecurityEvents] = field(default_factory=dict, repr=False)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> "WorkerTrust":
        env = os.environ if environ is None else environ
        explicit = env.get(ENV_VAR)
        secret = worker_job_secret(Secret(explicit) if explicit else None, _database(env.get("S2W_SQLITE_URL")))
        return cls(signer=JobSigner(secret) if secret is not None else None, namespace=env.get(NAMESPACE_ENV) or None,
                   allowed=parse_collections(env.get(ALLOWED_COLLECTIONS_ENV)))

    def events(self, redis_conn: Any, namespace: str) -> SecurityEvents:
        recorder = self._events.get(namespace)
        if recorder is None:
            recorder = self._events[namespace] = SecurityEvents(redis_conn, RedisKeys(namespace), flush_every=0.0)
        return recorder

    def open_ticket(self, raw: Any) -> JobTicket:
        """Checks 1-2: MAC, namespace, expiry. Raises :class:`Refused`."""
        if self.signer is None:
            raise Refused("no_secret", "this worker has no job secret: set S2W_JOB_SECRET or S2W_JOB_SECRET_FILE "
                                       "(or run it where it can read the database)")
        ticket = self.signer.open_ticket(raw)
        if self.namespace is not None and ticket.namespace != self.namespace:
            raise Refused("foreign_namespace", f"ticket of namespace {ticket.namespace!r} reached a worker of "
                                               f"namespace {self.namespace!r}")
        return ticket

    @staticmethod
    def check_fresh(ticket: JobTicket, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if now > ticket.expires_at:
            raise Refused("expired_ticket", f"ticket expired {now - ticket.expires_at:.0f}s ago "
                                            "(it waited too long for a worker); the relay re-sends its keys")

    def open_payload(self, ticket: JobTicket, raw: bytes) -> JobPayload:
        """Check 3: the payload is the one the relay signed and writes only allowed collections."""
        if payload_digest(raw) != ticket.payload_sha256:
            raise Refused("payload_mismatch", f"payload of job {ticket.token} does not match its signed digest "
                                              "(altered or replaced in Redis)")
        try:
            payload = JobPayload.loads(raw)
        except PayloadError as exc:
            raise Refused("payload_mismatch", str(exc)) from None
        self.check_collections(ticket, _collections_of(payload))
        return payload

    def check_collections(self, ticket: JobTicket, used: Iterable[str]) -> None:
        used = set(used)
        outside = used - set(ticket.collections)
        if self.allowed is not None:
            outside |= used - self.allowed
        if outside:
            raise Refused("foreign_collection", f"job {ticket.token} would write to collection(s) {sorted(outside)} "
                                                "outside the mapping; nothing was written")


def _database(url: str | None) -> Path | None:
    if not url:
        return None
    try:
        return sqlite_path_from_url(url)
    except ConfigError:
        return None


def _collections_of(payload: JobPayload) -> set[str]:
    names: set[str] = set()
    for obj in payload.upserts:
        if not isinstance(obj, dict) or not isinstance(obj.get("collection"), str):
            raise Refused("payload_mismatch", "payload object without a collection name")
        names.add(obj["collection"])
    names.update(d.collection for d in payload.deletes)
    return names
