"""The writer end to end: triggers -> outbox -> relay -> RQ workers -> Weaviate, all real."""

from __future__ import annotations

import random
import sqlite3
import threading

import pytest

from sqlite_to_weaviate.store import dead_letters
from tests.support.pipeline import assert_stores_equal, wait_for

SCHEMA = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, active BOOLEAN,
    created_at TIMESTAMP, data BLOB
);
CREATE TABLE tags (owner TEXT, tag TEXT, weight REAL, PRIMARY KEY (owner, tag)) WITHOUT ROWID;
"""


def make_db(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def random_writes(conn, rng: random.Random, n: int, id_space: int = 200) -> None:
    for _ in range(n):
        op = rng.random()
        i = rng.randrange(id_space)
        conn.execute("BEGIN IMMEDIATE")
        if op < 0.45:
            conn.execute(
                "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                (i, f"item {i} v{rng.random():.6f}", rng.randrange(-2**40, 2**40), rng.uniform(-1e6, 1e6),
                 rng.randrange(2), f"2024-0{rng.randrange(1, 9)}-1{rng.randrange(10)}T10:00:00Z", rng.randbytes(16)),
            )
        elif op < 0.7:
            conn.execute("UPDATE items SET qty = qty + 1, name = name || '!' WHERE id = ?", (i,))
        elif op < 0.8:
            conn.execute("DELETE FROM items WHERE id = ?", (i,))
        elif op < 0.87:
            # primary-key change: delete(old) + upsert(new)
            conn.execute("UPDATE OR IGNORE items SET id = ? WHERE id = ?", (rng.randrange(id_space), i))
        else:
            conn.execute(
                "INSERT INTO tags VALUES (?, ?, ?) ON CONFLICT(owner, tag) DO UPDATE SET weight = excluded.weight",
                (f"o{i % 7}", f"t{i % 11}", rng.random()),
            )
            if rng.random() < 0.3:
                conn.execute("DELETE FROM tags WHERE owner = ? AND tag = ?", (f"o{(i + 1) % 7}", f"t{(i + 3) % 11}"))
        if rng.random() < 0.1:
            conn.execute("ROLLBACK")  # invariant 2: rolled-back changes never appear
        else:
            conn.execute("COMMIT")


def test_live_changes_replay_exactly(tmp_path, make_settings, pipeline_factory, weaviate_client):
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(2)
    pipeline.start_relay_thread()
    random_writes(conn, random.Random(7), 1500)
    pipeline.wait_caught_up(120)
    mapping = settings.load_mapping(conn)
    assert assert_stores_equal(weaviate_client, db, mapping) > 50
    # the outbox was pruned up to the checkpoint once everything was acknowledged
    assert conn.execute("SELECT count(*) FROM _s2w_outbox").fetchone()[0] == 0


@pytest.mark.parametrize("seed", [1, 7])
def test_concurrent_writers_same_keys(seed, tmp_path, make_settings, pipeline_factory, weaviate_client):
    """Two writer threads hammer one small key space while 3 workers apply: per-key order holds."""
    db = tmp_path / "app.db"
    make_db(db).close()
    settings = make_settings(db, partitions=4, batch_size=20)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(3)
    pipeline.start_relay_thread()

    def writer(seed: int) -> None:
        c = sqlite3.connect(db, isolation_level=None, timeout=30)
        random_writes(c, random.Random(seed), 800, id_space=30)
        c.close()

    threads = [threading.Thread(target=writer, args=(seed + s,)) for s in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipeline.wait_caught_up(120)
    conn = sqlite3.connect(db)
    assert_stores_equal(weaviate_client, db, settings.load_mapping(conn))


def test_rejected_row_is_dead_lettered_and_rest_lands(tmp_path, make_settings, pipeline_factory, weaviate_client):
    """Invariant 9: a row that cannot be converted goes to the dead-letter table; the batch lands."""
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    conn.execute("INSERT INTO items(id, name, qty) VALUES (1, 'ok', 1), (2, 'big', ?), (3, 'ok too', 3)", (2**60,))
    conn.execute("INSERT INTO items(id, name, price) VALUES (4, 'inf', ?)", (float("inf"),))  # SQLite keeps inf (NaN becomes NULL)
    pipeline.start_workers(1)
    pipeline.drain()
    letters = {d.key: d for d in dead_letters.list_letters(conn)}
    assert set(letters) == {(2,), (4,)}
    assert "2^53" in letters[(2,)].reason or "53" in letters[(2,)].reason
    collection = weaviate_client.collections.use(settings.load_mapping(conn).table("items").collection)
    assert collection.aggregate.over_all(total_count=True).total_count == 2
    # fix the data, retry: the dead letters sync and disappear
    conn.execute("UPDATE items SET qty = 5 WHERE id = 2")
    conn.execute("UPDATE items SET price = 1.5 WHERE id = 4")
    pipeline.drain()
    assert dead_letters.count(conn) == 0
    assert collection.aggregate.over_all(total_count=True).total_count == 4


def test_added_column_flows_to_weaviate(tmp_path, make_settings, pipeline_factory, weaviate_client):
    """Schema drift while live: ADD COLUMN is detected, re-captured, and the new column lands."""
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    relay = pipeline.start_relay_thread()
    conn.executemany("INSERT INTO items(id, name) VALUES (?, ?)", [(i, f"n{i}") for i in range(20)])
    pipeline.wait_caught_up(60)
    conn.execute("ALTER TABLE items ADD COLUMN colour TEXT")
    conn.execute("UPDATE items SET colour = 'red' WHERE id < 10")  # the old triggers do not see this column
    wait_for(lambda: relay.stats["drift_repairs"] >= 1, timeout=30, message="drift never repaired")
    pipeline.wait_caught_up(60)
    mapping = settings.load_mapping(conn)
    assert_stores_equal(weaviate_client, db, mapping)
    colours = [o.properties.get("colour") for o in weaviate_client.collections.use(mapping.table("items").collection).iterator()]
    assert colours.count("red") == 10


def test_vector_of_wrong_length_is_isolated_from_its_batch(tmp_path, make_settings, pipeline_factory,
                                                          weaviate_client):
    """Weaviate refuses a whole request when every object fails: bad rows are isolated, the rest lands.

    The relay starts while the table holds one vector, too few for the mapping to know the
    column's length (mapping/vector_length.py), so the wrong-length rows reach Weaviate and
    its own refusal is what is exercised here (the mapping's check: test_vector_length_refusal.py).
    """
    import struct

    db = tmp_path / "app.db"
    conn = make_db(db)
    conn.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, body TEXT, embedding BLOB)")
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text('[tables.chunks]\nvector_column = "embedding"\n')
    settings = make_settings(db, mapping_file=mapping_file, batch_size=50, partitions=1)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    good = struct.pack("<4f", 0.1, 0.2, 0.3, 0.4)
    conn.execute("INSERT INTO chunks VALUES (1, 'first', ?)", (good,))
    pipeline.start_workers(1)
    relay = pipeline.start_relay_thread()
    assert relay.mapping.table("chunks").vector_length("embedding") is None
    pipeline.wait_caught_up(60)
    bad = struct.pack("<3f", 1.0, 2.0, 3.0)
    conn.executemany("INSERT INTO chunks VALUES (?, ?, ?)",
                     [(i, f"chunk {i}", bad if i in (5, 17) else good) for i in range(2, 30)])
    wait_for(lambda: dead_letters.count(conn) == 2, timeout=60, message="the two bad rows were never dead-lettered")
    pipeline.wait_caught_up(60)
    letters = {d.key: d for d in dead_letters.list_letters(conn)}
    assert set(letters) == {(5,), (17,)}
    assert "length" in letters[(5,)].reason
    collection = weaviate_client.collections.use(settings.load_mapping(conn).table("chunks").collection)
    assert collection.aggregate.over_all(total_count=True).total_count == 27
    conn.execute("UPDATE chunks SET embedding = ? WHERE id IN (5, 17)", (good,))
    wait_for(lambda: dead_letters.count(conn) == 0, timeout=60, message="the fixed rows never synced")
    pipeline.wait_caught_up(60)
    assert collection.aggregate.over_all(total_count=True).total_count == 29
