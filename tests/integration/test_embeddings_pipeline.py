"""Embeddings computed by the workers, each once: real relay, worker processes, Weaviate, Redis.

The embedder is a deterministic Python callable (tests.support.embedders) so the tests are
fast; tests/integration/test_embeddings_semantic.py runs the real local model. Model calls
are counted by the pipeline's own counters (embed.counters), read from Redis.
"""

from __future__ import annotations

import sqlite3

import pytest
import redis

from sqlite_to_weaviate.backfill import BackfillOptions, backfill
from sqlite_to_weaviate.embed.counters import read_counters
from sqlite_to_weaviate.embed.text import digest_property, parse_object_digest, text_sha256
from sqlite_to_weaviate.store import dead_letters
from tests.support.embedders import REFUSE_MARK, vector_for
from tests.support.pipeline import assert_stores_equal

pytestmark = pytest.mark.integration

EMBEDDER_ID = "callable:tests.support.embedders:hash_vectors@1"

MAPPING = """
[embedders.hash]
kind = "callable"
function = "tests.support.embedders:hash_vectors"
version = "1"
batch_size = 16

[tables.notes.columns.body]
vectorize = true

[tables.notes.vectors.body]
embedder = "hash"
"""


def make_notes_db(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, body TEXT, views INTEGER)")
    return conn


def counts(redis_url: str, namespace: str) -> dict[str, int]:
    client = redis.Redis.from_url(redis_url)
    try:
        return read_counters(client, namespace).get(EMBEDDER_ID, {})
    finally:
        client.close()


def objects(client, collection: str) -> dict[str, object]:
    col = client.collections.use(collection)
    return {str(o.uuid): o for o in col.iterator(include_vector=True,
                                                  return_properties=["body", "views", digest_property("body")])}


def test_each_embedding_is_computed_once(tmp_path, make_settings, pipeline_factory, weaviate_client, redis_url,
                                         collection_prefix):
    db = tmp_path / "app.db"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING)
    conn = make_notes_db(db)
    bodies = [f"note body number {i % 40}" for i in range(50)]  # 40 distinct texts in 50 rows
    conn.executemany("INSERT INTO notes VALUES (?, ?, ?, 0)", [(i, f"t{i}", b) for i, b in enumerate(bodies)])
    conn.execute("INSERT INTO notes VALUES (99, 'empty', NULL, 0)")  # no text: no vector, no call
    settings = make_settings(db, mapping_file=mapping_file)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    alias = collection_prefix + "Notes"
    assert weaviate_client.alias.get(alias_name=alias).collection == alias + "_v1"
    assert weaviate_client.collections.exists(collection_prefix + "S2wEmbeddingCache")
    pipeline.start_workers(2)
    result = backfill(settings, BackfillOptions(wait_applied=False))
    assert result.rows_enqueued == 51
    pipeline.drain()

    first = counts(redis_url, settings.namespace)
    assert first["embedded"] == 40, first  # one model input per distinct text, duplicates in other rows included
    stored = objects(weaviate_client, alias)
    assert len(stored) == 51
    for i, body in enumerate(bodies):
        obj = stored[str(pipeline_uuid(settings, i))]
        assert obj.vector["body"] == pytest.approx(vector_for(body), abs=1e-6)
        digest = parse_object_digest(obj.properties[digest_property("body")])
        assert (digest.embedder_id, digest.text_sha256) == (EMBEDDER_ID, text_sha256(body))
    assert "body" not in (stored[str(pipeline_uuid(settings, 99))].vector or {})

    # updates of a column that is not embedded, each applied, then a backfill re-run: no model input
    for _ in range(3):
        conn.execute("UPDATE notes SET views = views + 1")
        pipeline.drain()
    backfill(settings, BackfillOptions(restart=True, wait_applied=False))
    pipeline.drain()
    second = counts(redis_url, settings.namespace)
    assert second["embedded"] == 40 and second["requests"] == first["requests"], second
    assert second["reused_object"] == first["reused_object"] + 4 * 50, second
    assert objects(weaviate_client, alias)[str(pipeline_uuid(settings, 1))].properties["views"] == 3

    # a changed input is embedded again; a deleted and re-created row is found in the cache
    conn.execute("UPDATE notes SET body = body || ' (edited)' WHERE id < 5")
    conn.execute("DELETE FROM notes WHERE id = 45")
    pipeline.drain()
    conn.execute("INSERT INTO notes VALUES (45, 't45', ?, 0)", (bodies[45],))
    pipeline.drain()
    third = counts(redis_url, settings.namespace)
    assert third["embedded"] == 45, third
    assert third["reused_cache"] >= second["reused_cache"] + 1, third
    assert assert_stores_equal(weaviate_client, db, pipeline_mapping(settings)) == 51


def test_refused_input_is_a_dead_letter_and_the_rest_lands(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                           redis_url, collection_prefix):
    db = tmp_path / "app.db"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING)
    conn = make_notes_db(db)
    settings = make_settings(db, mapping_file=mapping_file)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    conn.executemany("INSERT INTO notes VALUES (?, 't', ?, 0)",
                     [(i, f"fine text {i}" if i != 7 else f"way too long {REFUSE_MARK}") for i in range(20)])
    pipeline.drain()
    check = sqlite3.connect(db)
    letters = dead_letters.list_letters(check)
    check.close()
    assert [(d.table, d.key) for d in letters] == [("notes", (7,))]
    assert "refused the input of vector 'body'" in letters[0].reason and "too long" in letters[0].reason
    stored = objects(weaviate_client, collection_prefix + "Notes")
    assert len(stored) == 19
    assert counts(redis_url, settings.namespace)["refused"] == 1
    # fixed in the app: the dead letter clears once the row syncs
    conn.execute("UPDATE notes SET body = 'short now' WHERE id = 7")
    pipeline.drain()
    check = sqlite3.connect(db)
    assert dead_letters.count(check) == 0
    check.close()
    assert len(objects(weaviate_client, collection_prefix + "Notes")) == 20


def pipeline_mapping(settings):
    conn = settings.open_db(readonly=True)
    try:
        return settings.load_mapping(conn)
    finally:
        conn.close()


def pipeline_uuid(settings, key: int):
    return pipeline_mapping(settings).table("notes").uuid_for_key((key,))


def test_rollback_removes_the_alias_its_versions_and_the_cache(tmp_path, make_settings, pipeline_factory,
                                                                 weaviate_client, collection_prefix):
    from sqlite_to_weaviate.operate.rollback import rollback

    db = tmp_path / "app.db"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING)
    conn = make_notes_db(db)
    conn.execute("INSERT INTO notes VALUES (1, 't', 'some text', 0)")
    settings = make_settings(db, mapping_file=mapping_file)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    alias, cache = collection_prefix + "Notes", collection_prefix + "S2wEmbeddingCache"
    preview = rollback(settings, dry_run=True)
    assert preview.aliases_deleted == [alias]
    assert sorted(preview.collections_deleted) == sorted([alias + "_v1", cache])
    assert weaviate_client.alias.get(alias_name=alias) is not None  # a dry run changes nothing
    report = rollback(settings)
    assert report.aliases_deleted == [alias]
    assert weaviate_client.alias.get(alias_name=alias) is None
    assert not weaviate_client.collections.exists(alias + "_v1") and not weaviate_client.collections.exists(cache)
