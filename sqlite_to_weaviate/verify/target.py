"""The Weaviate side: schema pre-flight, counts, the hash stream, object fetches and deletes.

The cursor iterator (``collection.iterator``) pages through a collection in uuid order;
asking only for the content-hash property keeps each page small. Multi-tenant collections
are one cursor per tenant, merged by uuid (``heapq.merge``: one object per tenant in
memory). :func:`stage_hashes` copies the stream into the verifier's scratch file (in a
thread, concurrently with the SQLite side) and sorts it there, so the merge-join never
relies on the server's cursor order; it still checks strict order and fails loudly on a
duplicate uuid.

On a replicated collection every query here runs at ONE and reads one replica per shard;
differences are then settled by REST reads by id at the verify consistency level
(:func:`fetch_hashes_by_id`). Only deletes carry the verify level; :mod:`.replicas`
explains why a query must not (its read-repair writes the query's projection).
"""

from __future__ import annotations

import heapq
import uuid as uuid_mod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from weaviate.classes.query import Filter, QueryReference

from sqlite_to_weaviate.mapping import HASH_PROPERTY, DataType, TableMapping
from sqlite_to_weaviate.mapping.collections import return_properties, weaviate_type

from .errors import VerifyError
from .object_pages import ObjectPages, Page

FETCH_CHUNK = 200
ITERATOR_PAGE = 1000
# An id filter can match stale index entries of objects that were re-written (each write of
# an object gets a new internal id; the old one is cleaned up later), and ``limit`` counts
# them before they are dropped: ask for far more than the chunk, within Weaviate's
# QUERY_MAXIMUM_RESULTS (10,000 by default).
FILTER_LIMIT = 10_000
INDEX_CHECKS_IN_FLIGHT = 2
"""Pages whose index lookup runs while the cursor reads on. The lookup is the server's work
(about as much as the cursor's page: 28 ms of its CPU per 1,000 ids on a quiet machine, 50 ms
beside other jobs), so waiting for each in turn tripled the Weaviate side of a verify
(1.4x -> 2.9x the raw read at 1M rows); two in flight keep the cursor going."""
UNINDEXED = "!unindexed:"
"""Prefix of a staged hash whose object the cursor returns but an id filter does not find."""


def check_schema(client: Any, table: TableMapping) -> None:
    """Refuse (VerifyError naming the fix) when the collection does not match the mapping.

    A verify against the wrong collection, or one that lacks the hash property, would
    report every object as different — crying wolf; better to say why and stop.
    """
    name = table.collection
    if not client.collections.exists(name):
        raise VerifyError(
            f"collection {name!r} (table {table.table!r}) does not exist in Weaviate; "
            "run `sqlite-to-weaviate init` or check the mapping file / collection prefix"
        )
    config = client.collections.use(name).config.get()
    actual = {p.name: p.data_type for p in config.properties}
    problems = []
    if HASH_PROPERTY not in actual:
        problems.append(f"no {HASH_PROPERTY!r} property (was it written by sqlite-to-weaviate?)")
    for column in table.columns:
        if column.property not in actual:
            problems.append(f"property {column.property!r} (column {column.column!r}) is missing")
        elif actual[column.property] != weaviate_type(column.data_type):
            problems.append(
                f"property {column.property!r} is {actual[column.property].value}, "
                f"the mapping says {column.data_type.value}"
            )
    refs = {r.name for r in (config.references or [])}
    for reference in table.references:
        if reference.property not in refs:
            problems.append(f"reference {reference.property!r} (column {reference.column!r}) is missing")
    multi = bool(config.multi_tenancy_config and config.multi_tenancy_config.enabled)
    if multi != bool(table.tenant_column):
        problems.append("multi-tenancy " + ("is on but the mapping has no tenant column" if multi
                                            else "is off but the mapping has a tenant column"))
    if problems:
        raise VerifyError(
            f"collection {name!r} does not match the mapping of table {table.table!r}: " + "; ".join(problems)
            + ". Fix the mapping file or re-create the collection (`sqlite-to-weaviate init`)"
        )


def tenants(client: Any, table: TableMapping) -> list[str | None]:
    """Tenant names to scan ([None] for a single-tenant collection)."""
    if not table.tenant_column:
        return [None]
    return sorted(client.collections.use(table.collection).tenants.get())


def _handle(client: Any, table: TableMapping, tenant: str | None, *, writing: bool = False) -> Any:
    """A collection (or tenant) handle for queries, or with ``writing`` for deletes
    (at the verify level when ``client`` is the verifier's :class:`.replicas.LeveledClient`)."""
    collections = client.collections
    if writing:
        collections = getattr(client, "writing_collections", collections)
    collection = collections.use(table.collection)
    return collection.with_tenant(tenant) if tenant is not None else collection


def count_objects(client: Any, table: TableMapping) -> int:
    """Unfiltered aggregate count, summed over tenants."""
    total = 0
    for tenant in tenants(client, table):
        total += int(_handle(client, table, tenant).aggregate.over_all(total_count=True).total_count or 0)
    return total


def _hash_stream(handle: Any) -> Iterator[tuple[bytes, str | None]]:
    """The cursor's (uuid, hash) pairs, each page also looked up through the index.

    The cursor reads the object store; filters, search and ``delete_many`` read the index.
    An object in the first but not the second (a write cut short by a timeout or a crash)
    would pass a hash comparison yet be invisible to every query, so such objects are
    marked with :data:`UNINDEXED` and reported (one filtered query per page).
    """
    pages = ObjectPages(handle, page_size=ITERATOR_PAGE, filter_limit=FILTER_LIMIT)
    checks: deque[Future[Page]] = deque()  # in cursor order
    with ThreadPoolExecutor(INDEX_CHECKS_IN_FLIGHT, thread_name_prefix="verify-index") as pool:
        for page in pages.cursor():
            checks.append(pool.submit(_mark_unindexed, pages, page))
            while len(checks) > INDEX_CHECKS_IN_FLIGHT:  # bounded: memory stays a few pages
                yield from checks.popleft().result()
        while checks:
            yield from checks.popleft().result()


def _mark_unindexed(pages: ObjectPages, page: Page) -> Page:
    found = pages.findable([u for u, _ in page])
    if all(u in found for u, _ in page):
        return page
    for u, _ in page:  # look each miss up alone before calling it unindexed
        if u not in found:
            found |= pages.findable([u])
    return [(u, h if u in found else UNINDEXED + h) for u, h in page]


def stored_but_unindexed(client: Any, table: TableMapping, uuids: Iterable[uuid_mod.UUID]) -> set[uuid_mod.UUID]:
    """Which of ``uuids`` exist in the object store (looked up by id, not through the index)."""
    found: set[uuid_mod.UUID] = set()
    for u in uuids:
        for tenant in tenants(client, table):
            if _handle(client, table, tenant).data.exists(u):
                found.add(u)
                break
    return found


def fetch_hashes_by_id(
    client: Any, table: TableMapping, uuids: Iterable[uuid_mod.UUID],
) -> tuple[dict[uuid_mod.UUID, str], set[uuid_mod.UUID], dict[uuid_mod.UUID, str | None]]:
    """Three views of ``uuids`` on a replicated collection, all by id:

    * the content hash of every object that exists as read at the verify level (at ALL:
      every replica's newest version; the read also repairs older replicas);
    * those of them no id filter finds (the index check :func:`_hash_stream` makes);
    * where the node asked still holds another copy after that read (its hash, or None
      for no copy): a replica Weaviate did not repair (see :mod:`.replicas`).
    """
    wanted = list(uuids)
    found: dict[uuid_mod.UUID, str] = {}
    tenant_of: dict[uuid_mod.UUID, str | None] = {}
    own_copy: dict[uuid_mod.UUID, str | None] = {}
    for tenant in tenants(client, table):
        todo = [u for u in wanted if u not in found]
        if not todo:
            break
        for start in range(0, len(todo), FETCH_CHUNK):
            chunk = todo[start:start + FETCH_CHUNK]
            for u, props in client.get_objects(table.collection, tenant, chunk).items():
                found[u] = props.get(HASH_PROPERTY) or ""
                tenant_of[u] = tenant
    if client.level != "ONE":
        for tenant in {tenant_of[u] for u in found}:
            ids = [u for u in found if tenant_of[u] == tenant]
            for start in range(0, len(ids), FETCH_CHUNK):
                chunk = ids[start:start + FETCH_CHUNK]
                local = client.get_objects(table.collection, tenant, chunk, level="ONE")
                for u in chunk:
                    mine = (local[u].get(HASH_PROPERTY) or "") if u in local else None
                    if mine != found[u]:
                        own_copy[u] = mine
    unindexed: set[uuid_mod.UUID] = set()
    for tenant in {tenant_of[u] for u in found}:
        ids = [u for u in found if tenant_of[u] == tenant]
        pages = ObjectPages(_handle(client, table, tenant), page_size=ITERATOR_PAGE, filter_limit=FILTER_LIMIT)
        for start in range(0, len(ids), FETCH_CHUNK):
            chunk = ids[start:start + FETCH_CHUNK]
            seen = pages.findable([u.bytes for u in chunk])
            unindexed.update(u for u in chunk if u.bytes not in seen)
    return found, unindexed, own_copy


def iter_hashes(client: Any, table: TableMapping) -> Iterator[tuple[bytes, str | None]]:
    """(uuid bytes, content hash) of every object, in ascending uuid order."""
    streams = [_hash_stream(_handle(client, table, t)) for t in tenants(client, table)]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=lambda item: item[0])


def stage_hashes(
    client: Any, table: TableMapping, conn: Any, name: str, progress: Callable[[int], None] | None = None,
) -> int:
    """Copy every object's (uuid, hash) into table ``name`` of a scratch connection, indexed by uuid.

    Runs in its own thread while the SQLite side is staged, so a verify costs about the
    slower of the two reads instead of their sum. Sorting here also means correctness no
    longer depends on the cursor's order; duplicates (one uuid in two tenants) still
    surface as an order error in the merge-join.
    """
    conn.execute(f"CREATE TABLE {name} (u BLOB, h TEXT)")
    count, batch = 0, []
    for item in iter_hashes(client, table):
        batch.append(item)
        if len(batch) == ITERATOR_PAGE:
            conn.execute("BEGIN")
            conn.executemany(f"INSERT INTO {name} VALUES (?, ?)", batch)
            conn.execute("COMMIT")
            count += len(batch)
            if progress is not None:
                progress(len(batch))
            batch.clear()
    conn.executemany(f"INSERT INTO {name} VALUES (?, ?)", batch)
    count += len(batch)
    if progress is not None and batch:
        progress(len(batch))
    conn.execute(f"CREATE INDEX {name}_u ON {name}(u, h)")
    return count


@dataclass
class FetchedObject:
    """An object as stored: properties (blobs included), vector(s), reference target uuids."""

    uuid: uuid_mod.UUID
    properties: dict[str, Any]
    vector: Any = None
    references: dict[str, set[str]] = field(default_factory=dict)
    tenant: str | None = None


def _vector_of(obj: Any) -> Any:
    vectors = getattr(obj, "vector", None) or {}
    if isinstance(vectors, dict):
        if set(vectors) == {"default"}:
            return vectors["default"]
        return dict(vectors) or None
    return vectors


def fetch_objects(client: Any, table: TableMapping, uuids: Iterable[uuid_mod.UUID], *, full: bool = True) -> dict[uuid_mod.UUID, FetchedObject]:
    """Fetch objects by id (chunks of ``FETCH_CHUNK``, every tenant); absent ids are simply not returned.

    ``full`` asks for every property by name (blob properties are only returned when
    named), the vector(s) and the references; otherwise only the content hash.
    """
    wanted = list(uuids)
    found: dict[uuid_mod.UUID, FetchedObject] = {}
    if not wanted:
        return found
    if full:
        props = return_properties(table)
        refs = [QueryReference(link_on=r.property, return_properties=[]) for r in table.references] or None
        include_vector: Any = bool(table.vector_column or table.named_vectors)
        if table.named_vectors:
            include_vector = [name for name, _ in table.named_vectors]
    else:
        props, refs, include_vector = [HASH_PROPERTY], None, False
    for tenant in tenants(client, table):
        handle = _handle(client, table, tenant)
        for start in range(0, len(wanted), FETCH_CHUNK):
            chunk = [u for u in wanted[start:start + FETCH_CHUNK] if u not in found]
            if not chunk:
                continue
            result = handle.query.fetch_objects(
                filters=Filter.by_id().contains_any(chunk), limit=FILTER_LIMIT,
                return_properties=props, include_vector=include_vector, return_references=refs,
            )
            for obj in result.objects:
                references = {}
                for name, ref in (obj.references or {}).items():
                    references[name] = {str(o.uuid) for o in ref.objects}
                found[obj.uuid] = FetchedObject(obj.uuid, dict(obj.properties), _vector_of(obj), references, tenant)
    return found


def delete_objects(client: Any, table: TableMapping, uuids: list[uuid_mod.UUID]) -> int:
    """Delete objects by id in every tenant, also those the index does not find
    (``sqlite_to_weaviate.weaviate_deletes``); returns how many the index matched."""
    from sqlite_to_weaviate.weaviate_deletes import delete_objects as delete_reliably

    deleted = 0
    for tenant in tenants(client, table):
        deleted += delete_reliably(_handle(client, table, tenant, writing=True), [str(u) for u in uuids])
    return deleted


def blob_properties(table: TableMapping) -> list[str]:
    return [c.property for c in table.columns if c.data_type is DataType.BLOB]
