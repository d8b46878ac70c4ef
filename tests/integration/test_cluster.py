"""A real 3-node Weaviate cluster on loopback: it forms, survives a node restart, and
collections get the replication the settings ask for (or a clear error when the cluster
is too small). The fault scenarios with live writes are in test_cluster_faults.py."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import warnings

import pytest

from sqlite_to_weaviate.mapping.collections import cluster_size, ensure_collections
from sqlite_to_weaviate.weaviate_adapter import connect_weaviate
from tests.integration.test_writer_pipeline import make_db

pytestmark = pytest.mark.integration


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sqlite_to_weaviate", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_replication_factor_above_the_node_count_is_refused_before_anything_is_written(
        tmp_path, weaviate_url, redis_url, redis_namespace, collection_prefix, weaviate_client):
    db = tmp_path / "app.db"
    make_db(db).close()
    result = _cli("init", "--sqlite-url", str(db), "--weaviate-url", weaviate_url, "--redis-url", redis_url,
                  "--namespace", redis_namespace, "--collection-prefix", collection_prefix,
                  "--replication-factor", "3")
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "replication_factor 3 is more than the 1 node(s)" in result.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '_s2w_%'").fetchone()[0] == 0
    assert not [n for n in weaviate_client.collections.list_all(simple=True) if n.startswith(collection_prefix)]


def test_three_node_cluster_replication_settings_and_restart(tmp_path, weaviate_cluster_factory, make_settings):
    cluster = weaviate_cluster_factory(3)
    names = cluster.live_node_names()
    assert len(names) == 3 and len(set(names)) == 3
    assert len({n.http_port for n in cluster.nodes} | {n.grpc_port for n in cluster.nodes}) == 6
    assert len({n.data_dir for n in cluster.nodes}) == 3

    db = tmp_path / "app.db"
    make_db(db).close()
    # a factor the cluster cannot hold names both numbers
    result = _cli("init", "--sqlite-url", str(db), "--weaviate-url", cluster.url, "--replication-factor", "4",
                  "--namespace", "rf4")
    assert result.returncode == 3
    assert "replication_factor 4 is more than the 3 node(s)" in result.stderr, result.stderr

    settings = make_settings(db, weaviate_url=cluster.url, replication_factor=3)
    from sqlite_to_weaviate.initialize import initialize

    report = initialize(settings)
    assert report.collection_actions and not report.warnings
    client = connect_weaviate(cluster.nodes[2].url)  # any node serves the schema
    try:
        assert cluster_size(client) == 3
        for table in ("items", "tags"):
            name = settings.load_mapping(sqlite3.connect(db)).tables[table].collection
            config = client.collections.get(name).config.get().replication_config
            assert (config.factor, config.async_enabled, config.deletion_strategy.value) == \
                (3, True, "TimeBasedResolution")
        # a collection made without async replication is switched over; its factor is left alone
        from weaviate.classes.config import Configure

        legacy = f"{settings.collection_prefix}Legacy"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.collections.create(legacy, replication_config=Configure.replication(factor=2))
        from sqlite_to_weaviate.mapping.collections import replication_actions

        actions = replication_actions(client, legacy, 3)
        assert any("replication factor 2, the settings say 3" in a for a in actions)
        assert any("switched on async replication" in a for a in actions)
        config = client.collections.get(legacy).config.get().replication_config
        assert (config.factor, config.async_enabled, config.deletion_strategy.value) == (2, True, "TimeBasedResolution")
        # RF 1 on 3 nodes works but init says what it means
        settings1 = settings.replace(replication_factor=1, collection_prefix=settings.collection_prefix + "One")
        assert any("has 3 nodes and replication_factor is 1" in w for w in initialize(settings1).warnings)
        mapping = settings.load_mapping(sqlite3.connect(db))
        assert ensure_collections(client, mapping, replication_factor=3) == []  # idempotent
        # the embedding cache is replicated like the data: one copy would stall every job that
        # embeds while the node holding it is down
        from tests.integration.test_embeddings_pipeline import MAPPING, make_notes_db

        notes = tmp_path / "notes.db"
        make_notes_db(notes).close()
        mapping_file = tmp_path / "notes.toml"
        mapping_file.write_text(MAPPING)
        embedded = settings.replace(sqlite_path=notes, mapping_file=mapping_file,
                                    collection_prefix=settings.collection_prefix + "Emb")
        assert any("(embedding cache)" in a for a in initialize(embedded).collection_actions)
        cache = f"{embedded.collection_prefix}S2wEmbeddingCache"
        config = client.collections.get(cache).config.get().replication_config
        assert (config.factor, config.async_enabled) == (3, True)
        assert not any(cache in a for a in initialize(embedded).collection_actions)  # checked, nothing to say
    finally:
        client.close()

    # a node SIGKILLed and restarted on its data rejoins under the same name
    victim = cluster.nodes[1]
    victim.kill()
    assert victim.pid is None
    victim.start()
    assert sorted(cluster.live_node_names()) == sorted(names)
