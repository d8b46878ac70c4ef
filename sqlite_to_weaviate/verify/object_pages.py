"""The verifier's two hot reads of a collection: the cursor's pages of (uuid, content hash),
and which of a page's ids an id filter finds. Replies are read straight from the protobuf.

Why: the client's ``iterator`` / ``fetch_objects`` turn every result into a client object
(a UUID object, a property dict, metadata), about 10 ms of Python per 1,000 objects, and
the verifier makes two such reads of every object (the cursor and the index check) while
its SQLite side hashes rows under the same GIL. Reading the two fields it needs from the
reply costs about 3 ms (profiled at 1M rows: the client's parsing was the largest Python
cost of a verify; docs/verify.md has the figures).

Only the reply is read here: the request is built by the client's own query builder (the
one its ``fetch_objects`` uses, so tenant, consistency level and filters are encoded as
the client encodes them) and sent through the client's connection. That builder is not
public API, so :class:`ObjectPages` falls back to the public calls (same answers, slower)
when the installed client lacks it; ``tests/integration/test_verify_object_pages.py``
checks the two agree, and that the fast path is the one in use, on the pinned client.

A reply is untrusted input: an id longer than 16 bytes, or a cursor page that does not
move past the previous one, is refused (:class:`VerifyError`) rather than read. Weaviate
v1.35 sends ``id_as_bytes`` as a big-endian integer without leading zero bytes (observed:
uuid ``000002b2-f109-...`` arrived as 14 bytes; the client reads it with ``int.from_bytes``),
so shorter ids are padded back to 16.
"""

from __future__ import annotations

import inspect
import uuid as uuid_mod
from collections.abc import Callable, Iterator
from typing import Any

from weaviate.classes.query import Filter

from sqlite_to_weaviate.mapping import HASH_PROPERTY

from .errors import VerifyError

Page = list[tuple[bytes, str]]
"""(16-byte uuid, content hash; "" for an object without one), in the cursor's order."""


class ObjectPages:
    """Reads of one collection handle (a tenant's; the verifier's handles query at ONE)."""

    def __init__(self, handle: Any, *, page_size: int, filter_limit: int, fast: bool = True) -> None:
        """``fast=False`` uses the public calls even when the builder is there (tests compare the two)."""
        self._handle = handle
        self._page_size = page_size
        self._filter_limit = filter_limit
        self._search = _fast_search(handle) if fast else None

    @property
    def fast(self) -> bool:
        """True when replies are read from the protobuf (the client's builder was found)."""
        return self._search is not None

    def cursor(self) -> Iterator[Page]:
        """Every object once, in pages of ``page_size``, in uuid order (the server's cursor)."""
        if self._search is None:
            yield from self._public_cursor()
            return
        after: str | None = None
        last: bytes | None = None
        while True:
            reply = self._search(limit=self._page_size, after=after, return_properties=[HASH_PROPERTY])
            page = [(_uuid_bytes(r.metadata), _hash_of(r.properties)) for r in reply.results]
            if not page:  # like the client's iterator: only an empty page ends the cursor
                return
            if (last is not None and page[0][0] <= last) or page[-1][0] < page[0][0]:
                # a cursor that repeats itself would never end (the scratch file fills)
                raise VerifyError(f"Weaviate's cursor did not move past {after}: stopping this verify")
            yield page
            last = page[-1][0]
            after = str(uuid_mod.UUID(bytes=last))

    def findable(self, ids: list[bytes]) -> set[bytes]:
        """Which of ``ids`` an id filter (the index ``delete_many`` and search use) finds."""
        if not ids:
            return set()
        wanted = Filter.by_id().contains_any([str(uuid_mod.UUID(bytes=u)) for u in ids])
        if self._search is None:
            return {o.uuid.bytes for o in self._handle.query.fetch_objects(
                filters=wanted, limit=self._filter_limit, return_properties=[]).objects}
        reply = self._search(limit=self._filter_limit, filters=wanted, return_properties=[])
        return {_uuid_bytes(r.metadata) for r in reply.results}

    def _public_cursor(self) -> Iterator[Page]:
        page: Page = []
        for obj in self._handle.iterator(return_properties=[HASH_PROPERTY], cache_size=self._page_size):
            page.append((obj.uuid.bytes, obj.properties.get(HASH_PROPERTY) or ""))
            if len(page) == self._page_size:
                yield page
                page = []
        if page:
            yield page


def _fast_search(handle: Any) -> Callable[..., Any] | None:
    """``search(**request_fields) -> SearchReply`` through the client's builder, or None."""
    query = getattr(handle, "query", None)
    try:
        builder = query._query  # type: ignore[union-attr]
        send = query._connection.grpc_search  # type: ignore[union-attr]
        metadata = query._parse_return_metadata(None, False)  # type: ignore[union-attr]
        properties = query._parse_return_properties
    except (AttributeError, TypeError):  # another client version: other names or signatures
        return None
    if not (callable(getattr(builder, "get", None)) and callable(send) and callable(properties)):
        return None
    if inspect.iscoroutinefunction(send):  # an async connection: its replies are awaited elsewhere
        return None

    def search(*, return_properties: list[str], **fields: Any) -> Any:
        return send(builder.get(return_metadata=metadata, return_properties=properties(return_properties), **fields))

    return search


def _uuid_bytes(metadata: Any) -> bytes:
    raw = bytes(metadata.id_as_bytes)
    if len(raw) == 16:
        return raw
    if len(raw) > 16:
        raise VerifyError(f"Weaviate returned a malformed object id ({len(raw)} bytes): stopping this verify")
    if not raw and metadata.id:  # a server that sends only the text form
        try:
            return uuid_mod.UUID(metadata.id).bytes
        except ValueError:
            raise VerifyError(f"Weaviate returned a malformed object id {metadata.id[:64]!r}: stopping this verify") from None
    return raw.rjust(16, b"\0")


def _hash_of(properties: Any) -> str:
    fields = properties.non_ref_props.fields
    if HASH_PROPERTY not in fields:
        return ""
    return str(fields[HASH_PROPERTY].text_value)
