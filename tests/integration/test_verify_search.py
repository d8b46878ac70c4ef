"""``verify --search`` on the real servers: recall@k reported, and a broken index fails it.

Two ways of breaking search that a content-hash comparison alone cannot see: vectors
replaced by random ones behind the pipeline's back (the objects' properties, content hash
included, are untouched), and objects deleted and re-inserted without their text. Then
``--repair`` re-sends the failing rows and the check passes again.
"""

from __future__ import annotations

import random

import pytest

from sqlite_to_weaviate.verify import verify
from sqlite_to_weaviate.verify.search import SearchOptions
from tests.integration.test_embeddings_pipeline import MAPPING, make_notes_db
from tests.support.embedders import DIMS

pytestmark = pytest.mark.integration

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
         "romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def notes(n: int, seed: int = 5) -> list[tuple[int, str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        body = " ".join(rng.sample(WORDS, 6)) + f" item{i}"
        rows.append((i, f"title {i}", body if i % 10 else "ok thanks"))  # "ok thanks" six times: ties
    return rows


@pytest.fixture
def synced(tmp_path, make_settings, pipeline_factory, weaviate_client):
    db = tmp_path / "app.db"
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING)
    conn = make_notes_db(db)
    conn.executemany("INSERT INTO notes VALUES (?, ?, ?, 0)", notes(60))
    settings = make_settings(db, mapping_file=mapping_file)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    pipeline.start_relay_thread()
    conn.execute("UPDATE notes SET views = 1")  # every row through the pipeline once
    pipeline.wait_caught_up()
    return settings, pipeline, conn


def test_search_check_reports_recall_and_fails_on_a_broken_index(synced, weaviate_client, collection_prefix):
    settings, pipeline, conn = synced
    options = SearchOptions(sample=100, k=5, min_recall=0.95)
    clean = verify(settings, search=options)
    search = clean.tables["notes"].search
    assert search.sampled == 60
    assert (search.keyword.checked, search.keyword.found) == (60, 60)
    assert (search.vectors["body"].checked, search.vectors["body"].found) == (60, 60)
    assert clean.exit_code() == 0 and clean.clean, clean.render()
    assert "keyword recall@5 100.0%" in clean.render()

    collection = weaviate_client.collections.use(collection_prefix + "Notes")
    by_key = {}
    for obj in collection.iterator(include_vector=True, return_properties=["body", "title", "views", "s2wContentHash",
                                                                              "s2wVec_body"]):
        by_key[obj.properties["title"]] = obj
    rng = random.Random(1)
    broken_vectors = [f"title {i}" for i in (1, 2, 3, 4, 5, 6)]
    for title in broken_vectors:  # another program overwrites the vector; properties (hashes too) stay
        collection.data.update(uuid=by_key[title].uuid, vector={"body": [rng.uniform(-1, 1) for _ in range(DIMS)]})
    broken_text = [f"title {i}" for i in (11, 12, 13, 14)]
    for title in broken_text:  # deleted and re-inserted without its text (content hash kept: verify's scan is blind)
        obj = by_key[title]
        collection.data.delete_by_id(obj.uuid)
        props = {k: v for k, v in obj.properties.items() if k != "body"}
        collection.data.insert(props, uuid=obj.uuid, vector=obj.vector)

    broken = verify(settings, search=options)
    search = broken.tables["notes"].search
    assert search.vectors["body"].found == 60 - len(broken_vectors)
    assert search.keyword.found == 60 - len(broken_text)
    assert broken.exit_code() == 1 and not broken.clean
    assert sorted(broken.search_below) == ["notes keyword", "notes vector:body"]
    failed = {(f.check, tuple(f.key)) for f in search.failures}
    assert failed == {("vector:body", (i,)) for i in (1, 2, 3, 4, 5, 6)} | {("keyword", (i,)) for i in (11, 12, 13, 14)}
    assert "BELOW THRESHOLD" in broken.render()

    repaired = verify(settings, search=options, repair=True)
    assert repaired.exit_code() == 2, repaired.render()
    assert repaired.tables["notes"].search.repaired == 10
    again = verify(settings, search=options)
    assert again.exit_code() == 0 and again.tables["notes"].search.failures == [], again.render()

