"""HMAC-SHA256 over what crosses Redis between the relay and the workers.

Redis is a trust boundary (invariant 10, docs/operations.md): anyone who can write to it
could otherwise hand a worker rows to write (a forged fence + payload + ticket overwrote
and deleted objects before this existed) or hand the relay an "applied" ack for work
that never happened (the relay would advance its checkpoint and prune the outbox: data
lost). So, with a secret the relay and the workers share and Redis never sees
(:mod:`.job_secret`):

* the relay signs each job ticket; the ticket carries the SHA-256 digest of its payload
  key and the list of mapped collections, so one MAC covers ticket and payload;
* a worker verifies the ticket before it reads anything else, the payload against the
  digest, and every collection against the signed list (and its own allow-list);
* workers sign their acks; the relay ignores (and counts) any ack whose MAC fails.

MACs are domain-separated (a ticket MAC is never a valid ack MAC) and computed over a
canonical JSON encoding (sorted keys, ASCII), which survives RQ's JSON round trip
unchanged. Comparison is constant-time. The key never appears in a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlite_to_weaviate.weaviate_adapter import Secret
from sqlite_to_weaviate.writer.payload import Ack, JobTicket, PayloadError

_TICKET = b"s2w-ticket\x00"
_ACK = b"s2w-ack\x00"
MAC_FIELD = "mac"


class Refused(Exception):
    """A job a worker must not apply; ``kind`` names the check that failed (for counters)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class ForgedAck(ValueError):
    """An ack the relay must not trust (no MAC, a wrong one, or not an ack at all)."""


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def payload_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class JobSigner:
    """Signs and verifies tickets and acks with one shared secret."""

    __slots__ = ("_key",)

    def __init__(self, secret: Secret) -> None:
        self._key = secret.reveal().encode("utf-8")

    def __repr__(self) -> str:
        return "JobSigner(key=***)"

    def _mac(self, domain: bytes, body: dict[str, Any]) -> str:
        return hmac.new(self._key, domain + canonical(body), hashlib.sha256).hexdigest()

    def _verified_body(self, domain: bytes, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            return None
        mac = data.get(MAC_FIELD)
        body = {k: v for k, v in data.items() if k != MAC_FIELD}
        if not isinstance(mac, str):
            return None
        try:
            expected = self._mac(domain, body)
        except (TypeError, ValueError):  # not canonically encodable: not something we signed
            return None
        return body if hmac.compare_digest(mac.encode("ascii", "replace"), expected.encode("ascii")) else None

    # ---------------------------------------------------------------- tickets
    def sign_ticket(self, ticket: JobTicket) -> dict[str, Any]:
        """The RQ job's argument: the ticket's fields plus their MAC."""
        body = ticket.to_json()
        return {**body, MAC_FIELD: self._mac(_TICKET, body)}

    def open_ticket(self, data: Any) -> JobTicket:
        """The ticket if its MAC verifies; raises :class:`Refused` (kind ``forged_ticket``)."""
        body = self._verified_body(_TICKET, data)
        if body is None:
            raise Refused("forged_ticket", "job ticket MAC does not verify (forged, altered in Redis, "
                                           "or signed with another job secret)")
        try:
            return JobTicket.from_json(body)
        except PayloadError as exc:  # signed by a relay of another version
            raise Refused("bad_ticket", str(exc)) from None

    # ---------------------------------------------------------------- acks
    def seal_ack(self, ack: Ack) -> str:
        body = ack.to_json()
        return json.dumps({**body, MAC_FIELD: self._mac(_ACK, body)}, separators=(",", ":"))

    def open_ack(self, raw: bytes | str) -> Ack:
        """The ack if its MAC verifies; raises :class:`ForgedAck` for anything else."""
        try:
            data = json.loads(raw)
        except (ValueError, TypeError):
            raise ForgedAck("not JSON") from None
        body = self._verified_body(_ACK, data)
        if body is None:
            raise ForgedAck("MAC missing or wrong")
        try:
            return Ack.from_json(body)
        except PayloadError as exc:
            raise ForgedAck(str(exc)) from None
