"""``writer.weaviate_apply`` against the real server: a job's upserts go in requests of at
most ``request_objects`` (so a live request never queues behind a whole history job inside
Weaviate's one indexing queue), and splitting changes nothing about what lands: bad rows
are still isolated and reported, suspects still replaced, references still added."""

from __future__ import annotations

import uuid

import pytest
from weaviate.classes.config import Configure, DataType, Property, ReferenceProperty
from weaviate.classes.query import QueryReference

from sqlite_to_weaviate.writer.weaviate_apply import RetryPolicy, apply_upserts

pytestmark = pytest.mark.integration


def _upsert(collection: str, i: int, **props) -> dict:
    return {"collection": collection, "uuid": str(uuid.UUID(int=i + 1)), "tenant": None, "vector": [float(i), 1.0],
            "properties": {"title": f"row {i}", "n": i, **props}, "references": {}}


def test_upserts_go_in_requests_of_at_most_request_objects(weaviate_client, collection_prefix):
    name = f"{collection_prefix}Chunks"
    weaviate_client.collections.create(name, vector_config=Configure.Vectors.self_provided(), properties=[
        Property(name="title", data_type=DataType.TEXT), Property(name="n", data_type=DataType.INT)],
        references=[ReferenceProperty(name="parent", target_collection=name)])
    handle = weaviate_client.collections.use(name)
    upserts = [_upsert(name, i) for i in range(23)]
    upserts[9]["properties"]["n"] = "not a number"  # refused by the server: reported, the rest lands
    upserts[20]["references"] = {"parent": [upserts[0]["uuid"]]}
    requests = []
    rejected = apply_upserts(weaviate_client, upserts, RetryPolicy(max_retries=0), lambda: requests.append(1),
                             replace=frozenset({upserts[3]["uuid"]}), request_objects=7)
    # 23 objects in requests of 7, 7, 7 and 2 (the server answers the bad row's request per
    # object), the replaced object's delete by id before its request, then one request for the
    # references; the guard runs before each.
    assert len(requests) == 6
    assert set(rejected) == {upserts[9]["uuid"]}
    stored = {str(o.uuid): o for o in handle.iterator()}
    assert set(stored) == {u["uuid"] for i, u in enumerate(upserts) if i != 9}
    assert all(stored[u["uuid"]].properties["n"] == i for i, u in enumerate(upserts) if i != 9)
    parent = handle.query.fetch_object_by_id(upserts[20]["uuid"], return_references=[QueryReference(link_on="parent")])
    assert [str(o.uuid) for o in parent.references["parent"].objects] == [upserts[0]["uuid"]]

    requests.clear()
    apply_upserts(weaviate_client, [_upsert(name, i) for i in range(23)], RetryPolicy(max_retries=0),
                  lambda: requests.append(1), request_objects=None)
    assert len(requests) == 1  # None: one request per collection, as before
    requests.clear()
    apply_upserts(weaviate_client, [_upsert(name, i) for i in range(23)], RetryPolicy(max_retries=0),
                  lambda: requests.append(1), request_objects=10)
    assert len(requests) == 3
