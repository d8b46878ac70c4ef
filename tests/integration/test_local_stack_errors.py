"""Issue 2's "done means" against the real servers, and the clear errors when they cannot start.

* A machine without the Go toolchain (or without redis-server and apt) gets one message
  naming what is missing and the ways out, instead of a traceback; simulated with a PATH
  that lacks the tool, which is exactly what such a machine looks like to the code.
* A real RQ SimpleWorker runs JSON-serialized jobs from the session Redis.
* A collection round trip on the real Weaviate with deterministic object ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sqlite_to_weaviate.errors import LocalStackError
from sqlite_to_weaviate.local.redis_server import ensure_redis_binary
from sqlite_to_weaviate.local.weaviate_build import binary_path, ensure_weaviate_binary
from sqlite_to_weaviate.mapping import object_uuid


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding one empty directory: no go, no redis-server, no apt-get."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_missing_go_toolchain_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bare_path: Path):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("S2W_CACHE_DIR", str(cache))
    progress: list[str] = []
    with pytest.raises(LocalStackError) as caught:
        ensure_weaviate_binary(version="v0.0.0-test", progress=progress.append)
    message = str(caught.value)
    assert "'go'" in message or "`go`" in message or " go " in message
    assert "docker compose" in message
    assert "--weaviate-url" in message
    assert not binary_path("v0.0.0-test").exists()
    assert progress == []  # it failed before claiming to build anything


def test_missing_redis_without_apt_says_what_to_do(bare_path: Path):
    with pytest.raises(LocalStackError) as caught:
        ensure_redis_binary()
    message = str(caught.value)
    assert "redis-server" in message
    assert "apt-get" in message
    assert "docker compose" in message
    assert "--redis-url" in message


def combine(numbers: list[int], label: str, options: dict[str, Any]) -> dict[str, Any]:
    """A job function: JSON in, JSON out (the pipeline never pickles)."""
    return {"label": label.upper(), "total": sum(numbers), "options": options}


def refuse(reason: str) -> None:
    raise ValueError(reason)


def test_rq_simple_worker_runs_json_jobs(redis_url: str, redis_client, redis_namespace: str):
    from rq import Queue, SimpleWorker
    from rq.job import JobStatus
    from rq.serializers import JSONSerializer

    queue = Queue(f"{redis_namespace}-jobs", connection=redis_client, serializer=JSONSerializer)
    ok = queue.enqueue(combine, [1, 2, 3], "héllo", {"nested": [True, None]},
                       job_id=f"{redis_namespace}-ok", failure_ttl=60, result_ttl=60)
    bad = queue.enqueue(refuse, "bad input", job_id=f"{redis_namespace}-bad", failure_ttl=60)
    assert ok.get_status() == JobStatus.QUEUED

    worker = SimpleWorker([queue], connection=redis_client, serializer=JSONSerializer,
                          name=f"{redis_namespace}-worker")
    assert worker.work(burst=True, with_scheduler=False) is True

    ok.refresh()
    assert ok.get_status() == JobStatus.FINISHED
    assert ok.return_value() == {"label": "HÉLLO", "total": 6, "options": {"nested": [True, None]}}
    bad.refresh()
    assert bad.get_status() == JobStatus.FAILED
    assert "ValueError: bad input" in bad.latest_result().exc_string
    assert len(queue) == 0


@pytest.mark.integration
def test_weaviate_batch_round_trip_with_deterministic_ids(weaviate_client, collection_prefix: str):
    from weaviate.classes.config import DataType, Property
    from weaviate.classes.query import Filter

    name = f"{collection_prefix}Note"
    collection = weaviate_client.collections.create(
        name,
        properties=[Property(name="body", data_type=DataType.TEXT), Property(name="rank", data_type=DataType.INT)],
    )
    rows = [(i, f"note {i} — ünïcödé") for i in range(25)]
    ids = {i: object_uuid("notes", (i,)) for i, _ in rows}
    assert len(set(ids.values())) == len(rows)

    with collection.batch.fixed_size(batch_size=10) as batch:
        for i, body in rows:
            batch.add_object(properties={"body": body, "rank": i}, uuid=ids[i])
    assert collection.batch.failed_objects == []

    # Re-sending the same rows (a replayed batch) upserts onto the same objects.
    with collection.batch.fixed_size(batch_size=10) as batch:
        for i, body in rows:
            batch.add_object(properties={"body": body, "rank": i}, uuid=ids[i])
    assert collection.batch.failed_objects == []
    assert len(collection) == len(rows)

    fetched = collection.query.fetch_objects_by_ids(list(ids.values()), limit=len(ids)).objects
    assert {obj.uuid: obj.properties for obj in fetched} == {
        ids[i]: {"body": body, "rank": i} for i, body in rows
    }

    gone = collection.data.delete_many(where=Filter.by_id().contains_any(list(ids.values())))
    assert gone.successful == len(rows) and gone.failed == 0
    assert len(collection) == 0
    assert collection.query.fetch_object_by_id(ids[0]) is None
