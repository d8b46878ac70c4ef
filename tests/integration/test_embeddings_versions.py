"""Changing the embedding model without downtime, on the real servers.

A second "model" (another deterministic callable with 24 dimensions) replaces the first:
``rebuild`` fills v2 beside v1 while the app keeps writing, ``switch`` verifies v2 and
moves the alias, ``rollback`` moves it back, ``drop`` removes v1. A reader queries through
the alias the whole time and must never fail; both versions must equal SQLite.
"""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import threading
import time

import pytest

from sqlite_to_weaviate.mapping import versions
from sqlite_to_weaviate.operate import embeddings as lifecycle
from sqlite_to_weaviate.operate.embedding_status import status as embedding_status
from sqlite_to_weaviate.embed.counters import read_counters
from tests.integration.test_embeddings_pipeline import EMBEDDER_ID, MAPPING, make_notes_db, pipeline_mapping
from tests.support.pipeline import assert_stores_equal

pytestmark = pytest.mark.integration

MAPPING_V2 = MAPPING.replace('''[tables.notes.vectors.body]
embedder = "hash"''', '''[embedders.hash2]
kind = "callable"
function = "tests.support.embedders:hash_vectors_v2"
version = "1"

[tables.notes.vectors.body]
embedder = "hash2"''')
V2_ID = "callable:tests.support.embedders:hash_vectors_v2@1"


def vector_dims(client, collection: str) -> set[int]:
    return {len(o.vector["body"]) for o in client.collections.use(collection).iterator(include_vector=True)
            if o.vector.get("body")}


def test_rebuild_switch_rollback_drop_while_the_app_writes(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                           redis_client, collection_prefix):
    db = tmp_path / "app.db"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING)
    conn = make_notes_db(db)
    conn.executemany("INSERT INTO notes VALUES (?, 't', ?, 0)", [(i, f"first body {i}") for i in range(80)])
    settings = make_settings(db, mapping_file=mapping_file)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(2)
    pipeline.start_relay_thread()
    conn.execute("UPDATE notes SET views = 1")
    pipeline.wait_caught_up()
    alias = collection_prefix + "Notes"
    assert vector_dims(weaviate_client, alias) == {16}

    stop = threading.Event()
    reader_errors: list[str] = []
    reads = [0]

    def reader() -> None:  # users keep searching through the alias
        collection = weaviate_client.collections.use(alias)
        while not stop.is_set():
            try:
                collection.query.bm25(query="body", limit=3)
                collection.aggregate.over_all(total_count=True)
                reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - any failure is downtime
                reader_errors.append(f"{type(exc).__name__}: {exc}")

    def writer() -> None:  # the app keeps writing
        rng = random.Random(3)
        w = sqlite3.connect(db, isolation_level=None, timeout=30)
        n = 1000
        while not stop.is_set():
            op = rng.random()
            if op < 0.4:
                w.execute("INSERT INTO notes VALUES (?, 't', ?, 0)", (n, f"new body {n}"))
                n += 1
            elif op < 0.7:
                w.execute("UPDATE notes SET body = body || '!' WHERE id = ?", (rng.randrange(80),))
            elif op < 0.9:
                w.execute("UPDATE notes SET views = views + 1 WHERE id = ?", (rng.randrange(80),))
            else:
                w.execute("DELETE FROM notes WHERE id = ?", (rng.randrange(80),))
            stop.wait(0.01)
        w.close()

    with pytest.raises(lifecycle.VersionError, match="nothing to rebuild"):
        lifecycle.rebuild(settings)  # the live version already has what the mapping asks for
    threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=writer, daemon=True)]
    for t in threads:
        t.start()
    try:
        mapping_file.write_text(MAPPING_V2)  # the new model, under a new embedder name; v1 keeps "hash"
        report = lifecycle.rebuild(settings, timeout=120)
        assert report.version == "v2" and report.relay_confirmed and report.applied, report.lines()
        assert report.vectors == {"body": V2_ID}
        stop.wait(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    pipeline.wait_caught_up()

    mapping = pipeline_mapping(settings)
    table = mapping.table("notes")
    assert [(v.name, v.state) for v in table.versions] == [("v1", "live"), ("v2", "building")]
    for name in ("v1", "v2"):  # both versions equal SQLite, each with its own model's vectors
        view = dataclasses.replace(mapping, tables={"notes": table.for_version(name)})
        assert assert_stores_equal(weaviate_client, db, view) > 80
    assert vector_dims(weaviate_client, alias + "_v1") == {16}
    assert vector_dims(weaviate_client, alias + "_v2") == {24}

    switched = lifecycle.switch(settings, search_sample=50)
    assert switched.switched, "\n".join(switched.lines())
    assert weaviate_client.alias.get(alias_name=alias).collection == alias + "_v2"
    assert vector_dims(weaviate_client, alias) == {24}
    conn.execute("INSERT INTO notes VALUES (5000, 't', 'written after the switch', 0)")
    pipeline.wait_caught_up()
    for name in ("v1", "v2"):  # the standby version is still written (rollback stays instant)
        found = weaviate_client.collections.use(f"{alias}_{name}").query.bm25(query="switch", limit=1).objects
        assert found and found[0].properties["body"] == "written after the switch"

    back = lifecycle.rollback(settings)
    assert back.switched and weaviate_client.alias.get(alias_name=alias).collection == alias + "_v1"
    assert vector_dims(weaviate_client, alias) == {16}
    lifecycle.switch(settings, to="v2", verify_first=False)
    assert lifecycle.drop(settings, version="v1")[-1] == f"deleted collection {alias}_v1"
    assert not weaviate_client.collections.exists(alias + "_v1")
    conn.execute("UPDATE notes SET body = 'after the drop' WHERE id = 5000")
    pipeline.wait_caught_up()
    assert [(v.name, v.state) for v in pipeline_mapping(settings).table("notes").versions] == [("v2", "live")]
    final = pipeline_mapping(settings)
    assert assert_stores_equal(weaviate_client, db, final) > 80

    assert reader_errors == [] and reads[0] > 0, reader_errors[:3]
    counts = read_counters(redis_client, settings.namespace)
    assert counts[V2_ID]["embedded"] > 80
    # the backfill re-run wrote v1 again without calling its model: only new texts were embedded by v1
    assert counts[EMBEDDER_ID]["reused_object"] >= 80
    status = embedding_status(settings)
    assert [v["version"] for v in status["tables"][0]["versions"]] == ["v2"]
    assert status["cache"]["entries"] >= counts[V2_ID]["embedded"]
    conn_check = sqlite3.connect(db)
    assert versions.generation(conn_check, versions.RELAY_GENERATION_KEY) == versions.generation(conn_check)
    conn_check.close()


class _SlowFirstLoad:
    """The settings, but the first mapping load waits (after reading the record) until ``until()``:
    a relay whose reload read the record just before a switch changed it."""

    def __init__(self, settings, until) -> None:
        self._settings = settings
        self._until = until
        self.loaded = threading.Event()

    def __getattr__(self, name):
        return getattr(self._settings, name)

    def load_mapping(self, conn):
        mapping = self._settings.load_mapping(conn)
        if not self.loaded.is_set():
            self.loaded.set()
            deadline = time.monotonic() + 30
            while not self._until() and time.monotonic() < deadline:
                time.sleep(0.01)
        return mapping


def test_a_switch_outlasts_a_relay_reload_that_read_the_record_just_before_it(
        tmp_path, make_settings, pipeline_factory, weaviate_client, collection_prefix):
    """Seen in CI: the relay reloaded the versions with the record of the rollback, and moved the alias
    back to v1 just after the next switch had moved it to v2; the drop that followed refused."""
    from sqlite_to_weaviate.collection_versions import RELAY_GENERATION_KEY
    from sqlite_to_weaviate.writer.relay_lock import RelayLock
    from sqlite_to_weaviate.writer.version_watch import VersionWatch

    db = tmp_path / "app.db"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING)
    conn = make_notes_db(db)
    conn.executemany("INSERT INTO notes VALUES (?, 't', ?, 0)", [(i, f"body {i}") for i in range(5)])
    settings = make_settings(db, mapping_file=mapping_file)
    pipeline_factory(settings).init()
    mapping_file.write_text(MAPPING_V2)
    lifecycle.rebuild(settings, wait=False)                     # no relay runs: nothing to wait for
    lifecycle.switch(settings, to="v2", verify_first=False)
    lifecycle.rollback(settings)                                # v1 live, v2 standby
    alias = collection_prefix + "Notes"
    points_at = lambda: weaviate_client.alias.get(alias_name=alias).collection  # noqa: E731
    assert points_at() == alias + "_v1"

    slow = _SlowFirstLoad(settings, until=lambda: points_at() == alias + "_v2")
    switch_returned = threading.Event()
    errors: list[str] = []

    def relay() -> None:  # the relay's own lock and version follower, nothing else of it
        lock = RelayLock(settings.sqlite_path)
        lock.acquire()
        watch_conn = settings.open_db()
        try:
            watch = VersionWatch(slow, watch_conn, pipeline_mapping(settings), on_error=errors.append)
            watch.generation = -1  # reload at once: with the record as it is before the switch
            while not switch_returned.is_set():
                watch.check()
                time.sleep(0.02)
        finally:
            watch_conn.close()
            lock.release()

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    assert slow.loaded.wait(30)
    lifecycle.switch(settings, to="v2", verify_first=False)
    switch_returned.set()
    thread.join(30)
    assert not errors
    assert points_at() == alias + "_v2"    # the stale reload moved it back; the switch set it again after
    assert versions.generation(conn, RELAY_GENERATION_KEY) == versions.generation(conn)
    assert lifecycle.drop(settings, version="v1")[-1] == f"deleted collection {alias}_v1"
