"""The verifier's protobuf-level reads (``verify.object_pages``) against the real server:
the same pages and the same index answers as the client's public calls, on the pinned
client the fast path is the one in use, and uuids with leading zero bytes come back whole."""

from __future__ import annotations

import uuid

import pytest
from weaviate.classes.config import Configure, ConsistencyLevel, DataType, Property
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter
from weaviate.classes.tenants import Tenant

from sqlite_to_weaviate.mapping import HASH_PROPERTY
from sqlite_to_weaviate.verify.object_pages import ObjectPages

pytestmark = pytest.mark.integration

# Leading zero bytes (Weaviate sends these ids as shorter big-endian integers), the largest
# uuid, and ordinary random ones.
EDGE_IDS = [uuid.UUID(int=0), uuid.UUID(int=1), uuid.UUID(int=2**64 + 7), uuid.UUID(int=2**128 - 1)]


def _objects(n: int) -> list[DataObject]:
    ids = EDGE_IDS + [uuid.uuid4() for _ in range(n - len(EDGE_IDS))]
    out = []
    for i, u in enumerate(ids):
        props = {"title": f"t{i}"}
        if i % 97 != 5:  # some objects without a hash: they read as ""
            props[HASH_PROPERTY] = f"h{i:05d}"
        out.append(DataObject(properties=props, uuid=u))
    return out


def _create(client, name: str, *, tenants: bool = False):
    return client.collections.create(
        name, vector_config=Configure.Vectors.self_provided(),
        multi_tenancy_config=Configure.multi_tenancy(enabled=True) if tenants else None,
        properties=[Property(name="title", data_type=DataType.TEXT),
                    Property(name=HASH_PROPERTY, data_type=DataType.TEXT)])


def _insert(handle, objects: list[DataObject]) -> None:
    result = handle.data.insert_many(objects)
    assert not result.errors


def _both(handle, page_size: int = 100) -> tuple[ObjectPages, ObjectPages]:
    fast = ObjectPages(handle, page_size=page_size, filter_limit=10_000)
    public = ObjectPages(handle, page_size=page_size, filter_limit=10_000, fast=False)
    assert fast.fast, "the installed weaviate-client no longer has the query builder the fast path reads through"
    assert not public.fast
    return fast, public


def test_fast_pages_equal_the_public_iterator(weaviate_client, collection_prefix):
    objects = _objects(1234)
    handle = _create(weaviate_client, f"{collection_prefix}Pages").with_consistency_level(ConsistencyLevel.ALL)
    _insert(handle, objects)
    fast, public = _both(handle)

    fast_pages, public_pages = list(fast.cursor()), list(public.cursor())
    flat = [item for page in fast_pages for item in page]
    assert flat == [item for page in public_pages for item in page]
    assert all(len(page) == 100 for page in fast_pages[:-1]) and 0 < len(fast_pages[-1]) <= 100
    expected = {o.uuid.bytes: o.properties.get(HASH_PROPERTY, "") for o in objects}
    assert dict(flat) == expected and len(flat) == len(expected)
    assert [u for u, _ in flat] == sorted(expected)  # uuid order, the edge ids whole (16 bytes)
    assert flat[0][0] == bytes(16) and flat[-1][0] == b"\xff" * 16


def test_fast_index_answers_equal_the_public_filter(weaviate_client, collection_prefix):
    objects = _objects(300)
    handle = _create(weaviate_client, f"{collection_prefix}Index")
    _insert(handle, objects)
    fast, public = _both(handle)
    present = [o.uuid.bytes for o in objects]
    absent = [uuid.uuid4().bytes for _ in range(20)]
    asked = present[::2] + absent + [EDGE_IDS[0].bytes, EDGE_IDS[3].bytes]
    assert fast.findable(asked) == public.findable(asked) == set(present[::2]) | {EDGE_IDS[0].bytes, EDGE_IDS[3].bytes}
    assert fast.findable([]) == set()
    handle.data.delete_many(where=Filter.by_id().equal(EDGE_IDS[0]))
    assert fast.findable([EDGE_IDS[0].bytes, EDGE_IDS[1].bytes]) == {EDGE_IDS[1].bytes}


def test_fast_pages_of_a_tenant(weaviate_client, collection_prefix):
    collection = _create(weaviate_client, f"{collection_prefix}Tenants", tenants=True)
    collection.tenants.create([Tenant(name="a"), Tenant(name="b")])
    _insert(collection.with_tenant("a"), _objects(150))
    b_objects = _objects(40)[len(EDGE_IDS):]
    _insert(collection.with_tenant("b"), b_objects)
    fast, public = _both(collection.with_tenant("b"), page_size=16)
    flat = [item for page in fast.cursor() for item in page]
    assert flat == [item for page in public.cursor() for item in page]
    assert {u for u, _ in flat} == {o.uuid.bytes for o in b_objects}  # only tenant b's objects
    own = [o.uuid.bytes for o in b_objects[:5]]
    assert fast.findable([EDGE_IDS[1].bytes] + own) == set(own)  # tenant a's object is not b's


def test_requests_carry_the_tenant_and_the_consistency_level(weaviate_client, collection_prefix, monkeypatch):
    """A one-node server answers the same at every level, so look at what is sent."""
    collection = _create(weaviate_client, f"{collection_prefix}Level", tenants=True)
    collection.tenants.create([Tenant(name="b")])
    handle = collection.with_consistency_level(ConsistencyLevel.ALL).with_tenant("b")
    _insert(handle, _objects(30))
    sent = []
    connection = handle.query._connection
    real = connection.grpc_search

    def spy(request):
        sent.append(request)
        return real(request)

    monkeypatch.setattr(connection, "grpc_search", spy)
    fast = ObjectPages(handle, page_size=10, filter_limit=10_000)
    assert fast.fast
    assert sum(len(p) for p in fast.cursor()) == 30
    assert len(fast.findable([EDGE_IDS[1].bytes])) == 1
    assert len(sent) == 5  # 3 full pages, the empty one that ends the cursor, the id filter
    assert {r.tenant for r in sent} == {"b"}
    levels = sent[0].DESCRIPTOR.fields_by_name["consistency_level"].enum_type.values_by_name
    assert {r.consistency_level for r in sent} == {levels["CONSISTENCY_LEVEL_ALL"].number}


def test_hash_stream_on_the_fast_path(weaviate_client, collection_prefix, monkeypatch):
    """The verifier's stream end to end: every object once, in uuid order, none marked."""
    from sqlite_to_weaviate.verify import target

    objects = _objects(250)
    handle = _create(weaviate_client, f"{collection_prefix}Stream")
    _insert(handle, objects)
    monkeypatch.setattr(target, "ITERATOR_PAGE", 40)
    got = list(target._hash_stream(handle))
    assert [u for u, _ in got] == sorted(o.uuid.bytes for o in objects)
    assert not any(h.startswith(target.UNINDEXED) for _, h in got)
