"""The OpenAI-compatible embedder through the real pipeline, claims between workers, and migrate --search.

The OpenAI endpoint is tests/support/openai_stub.py (no paid API is reachable from CI); the
worker processes, Redis, Weaviate and SQLite are real.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from sqlite_to_weaviate.embed.cache import CacheKey, EmbeddingCache, ensure_cache
from sqlite_to_weaviate.embed.counters import read_counters
from sqlite_to_weaviate.writer.embedding_claims import Claims
from sqlite_to_weaviate.operate import create_migration_config, run_migration
from sqlite_to_weaviate.store import dead_letters
from tests.integration.test_embeddings_pipeline import MAPPING, make_notes_db
from tests.support.openai_stub import API_KEY, TOO_LONG_MARK, StubServer

pytestmark = pytest.mark.integration

OPENAI_MAPPING = """
[embedders.remote]
kind = "openai"
url = "{url}"
model = "text-embedding-test"
api_key_env = "S2W_TEST_EMBEDDINGS_KEY"
batch_size = 8
requests_per_minute = 6000

[tables.notes.columns.body]
vectorize = true

[tables.notes.vectors.body]
embedder = "remote"
"""


def test_openai_compatible_embedder_in_the_workers(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                   redis_client, collection_prefix, monkeypatch):
    monkeypatch.setenv("S2W_TEST_EMBEDDINGS_KEY", API_KEY)  # the worker processes inherit it; it is never logged
    with StubServer(dims=12, max_words=40) as stub:
        db = tmp_path / "app.db"
        mapping_file = tmp_path / "mapping.toml"
        mapping_file.write_text(OPENAI_MAPPING.format(url=stub.url))
        conn = make_notes_db(db)
        texts = [f"remote text {i % 25}" for i in range(40)]
        texts[13] = f"far too long {TOO_LONG_MARK}"
        conn.executemany("INSERT INTO notes VALUES (?, 't', ?, 0)", list(enumerate(texts)))
        settings = make_settings(db, mapping_file=mapping_file)
        pipeline = pipeline_factory(settings)
        pipeline.init()
        stub.faults = ["429", "503"]  # the first two requests fail: retried, honouring Retry-After
        pipeline.start_workers(2)
        conn.execute("UPDATE notes SET views = 1")
        pipeline.drain()

        embedded = [t for call in stub.calls for t in call["inputs"]]
        assert sorted(embedded) == sorted(set(texts) - {texts[13]})  # each distinct accepted text once
        check = sqlite3.connect(db)
        letters = dead_letters.list_letters(check)
        check.close()
        assert [d.key for d in letters] == [(13,)] and "maximum context length" in letters[0].reason
        stored = [o.vector["body"] for o in weaviate_client.collections.use(
            collection_prefix + "Notes").iterator(include_vector=True, return_properties=["body"])]
        assert len(stored) == 39 and all(len(v) == 12 for v in stored)
        counts = read_counters(redis_client, settings.namespace)["openai:text-embedding-test"]
        assert counts["embedded"] == len(set(texts) - {texts[13]}) == 25
        assert counts["tokens"] > 0 and counts["refused"] == 1
        logs = "".join(p.read_text(errors="replace") for p in pipeline.log_dir.glob("*.log"))
        assert API_KEY not in logs


def test_claims_make_concurrent_jobs_embed_a_text_once(weaviate_client, redis_client, redis_namespace,
                                                       collection_prefix):
    name = collection_prefix + "Cache"
    ensure_cache(weaviate_client, name)
    cache = EmbeddingCache(weaviate_client, name)
    keys = [CacheKey("m@1", f"{i:064x}") for i in range(6)]
    first, second = Claims(redis_client, redis_namespace), Claims(redis_client, redis_namespace)
    mine, theirs = first.take(keys)
    assert mine == keys and theirs == []
    mine2, theirs2 = second.take(keys[:4] + [CacheKey("m@1", "f" * 64)])
    assert theirs2 == keys[:4] and len(mine2) == 1

    def finish_first() -> None:  # the first job embeds, caches and releases a moment later
        time.sleep(0.5)
        cache.store({k: [float(i), 1.0] for i, k in enumerate(keys) if k != keys[2]})
        first.release(keys, {keys[2]: "too long for the model"})

    thread = threading.Thread(target=finish_first)
    thread.start()
    found, refused, left = second.await_others(theirs2, cache, guard=lambda: None, run=lambda call: call(),
                                               timeout=10)
    thread.join()
    assert set(found) == {keys[0], keys[1], keys[3]} and refused == {keys[2]: "too long for the model"}
    assert left == []
    # a claim whose owner vanished is computed by the waiter once the wait is over
    third = Claims(redis_client, redis_namespace)
    lost = CacheKey("m@1", "e" * 64)
    third.take([lost])
    _, _, left = second.await_others([lost], cache, guard=lambda: None, run=lambda call: call(), timeout=0.3)
    assert left == [lost]


def test_migrate_validates_search(tmp_path, weaviate_url, redis_url, redis_namespace, collection_prefix,
                                  weaviate_client, redis_client):
    db = tmp_path / "app.db"
    conn = make_notes_db(db)
    conn.executemany("INSERT INTO notes VALUES (?, 't', ?, 0)", [(i, f"body {i} of note number {i * 7}")
                                                                 for i in range(30)])
    conn.close()
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(MAPPING)
    result = run_migration(create_migration_config(
        environ={}, sqlite_url=str(db), weaviate_url=weaviate_url, redis_url=redis_url, namespace=redis_namespace,
        collection_prefix=collection_prefix, mapping_file=str(mapping), backup_before_migration=False,
        search_validation_sample=30, settings_overrides=dict(lease_seconds=3.0, job_timeout=15, poll_interval=0.3),
        timeout_s=180.0))
    assert result.success, result.summary()
    search_lines = [line for line in result.summary() if line.startswith("search: ")]
    assert search_lines == [f"search: {collection_prefix}Notes: keyword recall@10 100.0%, vector body self-hit 100.0%"]


def test_the_cache_is_bounded_by_count_and_by_age(weaviate_client, collection_prefix):
    from sqlite_to_weaviate.embed.cache import prune

    name = collection_prefix + "Bounded"
    ensure_cache(weaviate_client, name)
    cache = EmbeddingCache(weaviate_client, name)
    batches = [[CacheKey("m@1", f"{b:02x}{i:062x}") for i in range(100)] for b in range(3)]
    for batch in batches:  # three writes, oldest first
        cache.store({k: [0.5, 0.25] for k in batch})
        time.sleep(1.1)
    report = prune(weaviate_client, name, max_entries=150)
    assert report.before == 300 and 100 <= report.after <= 150, report
    assert set(cache.lookup(batches[2])) == set(batches[2])  # the newest entries stay
    assert not cache.lookup(batches[0])                      # the oldest went first
    aged = prune(weaviate_client, name, max_entries=1000, max_age_days=1, now=time.time() + 2 * 86400)
    assert aged.deleted_by_age == report.after and aged.after == 0


def test_embeddings_commands(tmp_path, make_settings, pipeline_factory, weaviate_client, collection_prefix):
    from click.testing import CliRunner

    from sqlite_to_weaviate.cli import main

    db = tmp_path / "app.db"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING)
    conn = make_notes_db(db)
    conn.executemany("INSERT INTO notes VALUES (?, 't', ?, 0)", [(i, f"text {i}") for i in range(10)])
    settings = make_settings(db, mapping_file=mapping_file)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    conn.execute("UPDATE notes SET views = 1")
    pipeline.drain()
    options = ["--sqlite-url", str(db), "--weaviate-url", settings.weaviate_url, "--redis-url", settings.redis_url,
               "--namespace", settings.namespace, "--collection-prefix", collection_prefix,
               "--mapping", str(mapping_file)]
    status = CliRunner().invoke(main, ["embeddings", "status", *options])
    assert status.exit_code == 0, status.output
    assert f"notes: alias {collection_prefix}Notes -> {collection_prefix}Notes_v1" in status.output
    assert "v1     live" in status.output and "(10 objects)" in status.output
    assert "callable:tests.support.embedders:hash_vectors@1: 10 embedded" in status.output
    nothing = CliRunner().invoke(main, ["embeddings", "rebuild", *options])
    assert nothing.exit_code == 3 and "nothing to rebuild" in nothing.output
    refused = CliRunner().invoke(main, ["embeddings", "drop", "--version", "v1", "--yes", *options])
    assert refused.exit_code == 3 and "is the live version" in refused.output
    pruned = CliRunner().invoke(main, ["embeddings", "prune", *options])
    assert pruned.exit_code == 0 and "cache entries: 10 -> 10" in pruned.output
    overall = CliRunner().invoke(main, ["status", *options])
    assert "embeddings        callable:tests.support.embedders:hash_vectors@1: 10 embedded" in overall.output


def test_dry_run_plans_the_versioned_collection(tmp_path, weaviate_url, redis_url, redis_namespace, collection_prefix,
                                                weaviate_client, redis_client):
    db = tmp_path / "app.db"
    make_notes_db(db).executemany("INSERT INTO notes VALUES (?, 't', ?, 0)", [(i, f"text {i}") for i in range(5)])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(MAPPING)
    result = run_migration(create_migration_config(
        environ={}, sqlite_url=str(db), weaviate_url=weaviate_url, redis_url=redis_url, namespace=redis_namespace,
        collection_prefix=collection_prefix, mapping_file=str(mapping), dry_run=True))
    assert result.success and result.plan["rows"] == 5, result.summary()
    assert not weaviate_client.collections.exists(collection_prefix + "Notes_v1")  # a dry run writes nothing
