"""A wrong-length vector that reaches an empty collection first is refused, not indexed.

Weaviate fixes a vector index to the length of the first vector it receives. Live changes
go ahead of the history, so a live insert with a malformed vector can be that first one;
before the mapping knew a column's length, it was accepted and every correct vector of
the backfill after it became a dead letter. Real SQLite, Redis and Weaviate.
"""

from __future__ import annotations

import sqlite3

from sqlite_to_weaviate.mapping import encode_vector
from sqlite_to_weaviate.store import dead_letters
from sqlite_to_weaviate.verify import verify
from tests.support.backfill_data import run_backfill
from tests.support.pipeline import assert_stores_equal, wait_for

GOOD = 40


def test_a_wrong_length_vector_arriving_first_is_refused_and_the_history_lands(
        tmp_path, make_settings, pipeline_factory, weaviate_client):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, body TEXT, embedding BLOB)")
    conn.executemany("INSERT INTO chunks VALUES (?, ?, ?)",
                     [(i, f"chunk {i}", encode_vector([i / 10, 1.0, 0.5, 0.25])) for i in range(1, GOOD + 1)])
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text('[tables.chunks]\nvector_column = "embedding"\n')
    settings = make_settings(db, mapping_file=mapping_file, batch_size=10)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    conn.execute("INSERT INTO chunks VALUES (0, 'two floats', ?)", (encode_vector([0.5, 0.5]),))  # live, first
    pipeline.start_workers(2)
    pipeline.start_relay_thread()
    wait_for(lambda: dead_letters.list_letters(conn, table="chunks"), timeout=60,
             message="the live row with a wrong-length vector was never dead-lettered")
    run_backfill(settings, wait_applied=True, wait_timeout=120)
    pipeline.wait_caught_up(120)

    letters = dead_letters.list_letters(conn, table="chunks")
    assert [letter.key for letter in letters] == [(0,)], [(d.key, d.reason) for d in letters]
    assert "vector has 2 dimensions; this column's vectors have 4" in letters[0].reason
    mapping = settings.load_mapping(conn)
    collection = weaviate_client.collections.use(mapping.table("chunks").collection)
    assert len(collection) == GOOD  # every good vector landed: the index took their length
    report = verify(settings)
    assert report.tables["chunks"].refused.total == 1 and report.tables["chunks"].missing.total == 0

    conn.execute("UPDATE chunks SET embedding = ? WHERE id = 0", (encode_vector([0.0, 1.0, 0.5, 0.25]),))
    dead_letters.retry(conn, table="chunks")
    wait_for(lambda: not dead_letters.list_letters(conn, table="chunks"), timeout=60,
             message="the fixed row never synced")
    pipeline.wait_caught_up(120)
    assert assert_stores_equal(weaviate_client, db, mapping) == GOOD + 1
    assert verify(settings).clean
