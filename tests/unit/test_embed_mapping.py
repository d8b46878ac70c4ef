"""Embedder vectors in the mapping: config, reflection, objects per version, collections, version records."""

from __future__ import annotations

import sqlite3

import pytest

from sqlite_to_weaviate.store.state import ensure_state_table
from sqlite_to_weaviate import collection_versions
from sqlite_to_weaviate.mapping import versions
from sqlite_to_weaviate.embed.text import (digest_property, embedding_input, object_digest, parse_object_digest,
                                           text_sha256, vector_sum)
from sqlite_to_weaviate.mapping import MappingError, parse_mapping_config, reflect_mapping
from sqlite_to_weaviate.mapping.prefix import with_prefix
from sqlite_to_weaviate.writer.partitions import Entry, Job
from sqlite_to_weaviate.writer.rows_to_objects import build_payloads

SCHEMA = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, body TEXT, views INTEGER, emb BLOB);
CREATE TABLE tags (id INTEGER PRIMARY KEY, note_id INTEGER, name TEXT);
"""
BASE = """
[embedders.mini]
kind = "local"
model = "all-MiniLM-L6-v2"
[embedders.fn]
kind = "callable"
function = "tests.support.embedders:hash_vectors"
version = "7"
[tables.notes.columns.title]
vectorize = true
[tables.notes.columns.body]
vectorize = true
[tables.notes.vectors.text]
embedder = "mini"
[tables.notes.vectors.titles]
embedder = "fn"
source_columns = ["title"]
[tables.notes.vectors.raw]
column = "emb"
"""


@pytest.fixture
def conn():
    c = sqlite3.connect(":memory:")
    c.executescript(SCHEMA)
    return c


def test_config_and_reflection(conn):
    config = parse_mapping_config(BASE, "m.toml")
    assert config.embedders["mini"].embedder_id() == "all-MiniLM-L6-v2@53aa5117"
    assert config.embedders["fn"].embedder_id() == "callable:tests.support.embedders:hash_vectors@7"
    table = reflect_mapping(conn, config).table("notes")
    assert [(v.name, v.embedder, v.sources) for v in table.desired_vectors] == [
        ("text", "mini", ("title", "body")), ("titles", "fn", ("title",))]
    assert table.named_vectors == (("raw", "emb"),)
    assert [(v.name, v.state) for v in table.versions] == [("v1", "live")]  # not recorded yet: ids empty
    assert table.write_collections == ("Notes_v1",)
    with pytest.raises(MappingError, match="run `sqlite-to-weaviate init`"):
        table.to_objects({"id": 1, "title": "a", "body": "b", "views": 0, "emb": None})


@pytest.mark.parametrize("text, message", [
    ('[embedders.x]\nkind = "openai"\nurl = "http://h/v1"\n', "missing key 'model'"),
    ('[embedders.x]\nkind = "openai"\nmodel = "m"\nurl = "http://h/v1"\napi_key_env = "sk-123abc!"\n',
     "not an environment variable name"),
    ('[embedders.x]\nkind = "callable"\nfunction = "pkg.mod:f"\n', "missing key 'version'"),
    ('[embedders.x]\nkind = "local"\n', "exactly one of 'model' and 'path'"),
    ('[embedders.x]\nkind = "local"\nmodel = "gpt"\n', "unknown model 'gpt'"),
    ('[embedders.x]\nkind = "loca"\n', "did you mean 'local'"),
    ('[embedders.x]\nkind = "local"\nmodel = "all-MiniLM-L6-v2"\nbatch_sise = 3\n', "did you mean 'batch_size'"),
    ('[tables.notes.vectors.v]\nembedder = "nope"\n', "no embedder named 'nope'"),
    ('[embedders.x]\nkind = "local"\nmodel = "all-MiniLM-L6-v2"\n[tables.notes.vectors.v]\nembedder = "x"\n'
     'column = "emb"\n', "exactly one of 'column' and 'embedder'"),
    ('[embedding_cache]\nmax_entries = 0\n', "positive integer"),
])
def test_config_errors_name_the_key_and_fix(text, message):
    with pytest.raises(MappingError, match=message):
        parse_mapping_config(text, "m.toml")


@pytest.mark.parametrize("extra, message", [
    ("", "has no text to embed"),
    ('[tables.notes.columns.views]\nvectorize = true\n', "only text columns can be embedded"),
    ('[tables.notes]\nvectorizer = "text2vec-transformers"\n[tables.notes.columns.body]\nvectorize = true\n',
     "cannot be combined with vectorizer"),
    ('[tables.notes.columns.body]\nvectorize = true\n[[tables.tags.references]]\ncolumn = "note_id"\n'
     'property = "note"\ntarget = "notes"\n', "Weaviate cannot store a reference to an alias"),
])
def test_reflection_errors(conn, extra, message):
    text = '[embedders.x]\nkind = "local"\nmodel = "all-MiniLM-L6-v2"\n[tables.notes.vectors.v]\nembedder = "x"\n'
    with pytest.raises(MappingError, match=message):
        reflect_mapping(conn, parse_mapping_config(text + extra, "m.toml"))


def test_versions_are_recorded_and_fan_out_objects(conn):
    config = parse_mapping_config(BASE, "m.toml")
    mapping = reflect_mapping(conn, config)
    conn.execute("BEGIN")
    ensure_state_table(conn)
    conn.execute("COMMIT")
    actions = collection_versions.record_initial(conn, list(mapping.tables.values()), mapping.embedders)
    assert actions and "all-MiniLM-L6-v2@53aa5117" in actions[0]
    mapping = with_prefix(reflect_mapping(conn, config), "Pfx")
    table = mapping.table("notes")
    assert table.collection == "PfxNotes" and table.write_collections == ("PfxNotes_v1",)
    row = {"id": 1, "title": "Hello", "body": "world", "views": 3, "emb": b"\x00\x00\x80\x3f"}
    (obj,) = table.to_objects(row)
    assert obj.collection == "PfxNotes_v1" and obj.vector == {"raw": [1.0]}
    assert obj.embed == {"text": {"embedder": "mini", "id": "all-MiniLM-L6-v2@53aa5117", "from": ["title", "body"]},
                         "titles": {"embedder": "fn", "id": "callable:tests.support.embedders:hash_vectors@7",
                                    "from": ["title"]}}
    assert embedding_input(obj.properties, obj.embed["text"]["from"]) == "Hello\nworld"
    # the mapping moves to another model: the live version keeps its own, a new version gets the new one
    changed = reflect_mapping(conn, parse_mapping_config(BASE.replace('embedder = "mini"', 'embedder = "fn"'), "m"))
    notes = changed.table("notes")
    assert notes.embedded_vectors[0].embedder == "mini"
    assert "the mapping says embedder 'fn', v1 uses 'mini'" in versions.drift(notes)
    version = collection_versions.add_version(conn, notes, changed.embedders)
    assert version.name == "v2" and version.state == "building"
    notes = reflect_mapping(conn, parse_mapping_config(BASE.replace('embedder = "mini"', 'embedder = "fn"'), "m")) \
        .table("notes")
    assert notes.write_collections == ("Notes_v1", "Notes_v2")
    assert [o.collection for o in notes.to_objects(row)] == ["Notes_v1", "Notes_v2"]
    assert notes.for_version("v2").embedded_vectors[0].embedder == "fn"
    collection_versions.set_states(conn, "notes", {"v2": "live", "v1": "standby"})
    with pytest.raises(MappingError, match="exactly one live version"):
        collection_versions.set_states(conn, "notes", {"v1": "live"})
    assert versions.generation(conn) == 3


def test_collection_config_has_cosine_named_vectors_and_fingerprints(conn):
    from sqlite_to_weaviate.mapping.collections import collection_config

    table = reflect_mapping(conn, parse_mapping_config(BASE, "m.toml")).table("notes")
    config = collection_config(table)
    assert config["name"] == "Notes_v1"
    names = {p.name: p for p in config["properties"]}
    fingerprint = names[digest_property("text")]
    assert fingerprint.indexFilterable is False and fingerprint.indexSearchable is False
    vectors = {v.name: v for v in config["vector_config"]}
    assert set(vectors) == {"raw", "text", "titles"}
    assert vectors["text"].vectorIndexConfig.distance.value == "cosine"


def test_fingerprints():
    vector = [0.1, -0.5, 0.25]
    digest = parse_object_digest(object_digest("m@1", text_sha256("hi"), vector))
    assert digest.matches("m@1", text_sha256("hi"), vector)
    assert not digest.matches("m@2", text_sha256("hi"), vector)
    assert not digest.matches("m@1", text_sha256("ho"), vector)
    assert not digest.matches("m@1", text_sha256("hi"), [0.1, -0.5, 0.26])  # a replaced vector
    assert vector_sum(vector) == vector_sum([0.10000000001, -0.5, 0.25])    # float32 round-off is the same vector
    assert parse_object_digest("garbage") is None and parse_object_digest(None) is None
    assert embedding_input({"a": "x", "b": "", "c": None, "d": 5}, ["a", "b", "c", "d", "e"]) == "x"


def test_embedder_config_round_trips_through_the_writer():
    from sqlite_to_weaviate.mapping.config_writer import render_mapping_config

    text = BASE + ('[embedders.oa]\nkind = "openai"\nurl = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
                   'api_key_env = "OPENAI_API_KEY"\nrequests_per_minute = 60\n'
                   '[embedding_cache]\nmax_entries = 500\nmax_age_days = 2.5\n')
    config = parse_mapping_config(text, "m.toml")
    again = parse_mapping_config(render_mapping_config(config), "m.toml")
    assert again.embedders == config.embedders and again.embedding_cache == config.embedding_cache
    assert again.tables == config.tables


def test_the_relay_writes_every_change_to_every_version(conn):
    """writer.rows_to_objects: one object per recorded version for a row, one delete per version for a gone key."""
    config = parse_mapping_config(BASE, "m.toml")
    conn.execute("BEGIN")
    ensure_state_table(conn)
    conn.execute("COMMIT")
    collection_versions.record_initial(conn, list(reflect_mapping(conn, config).tables.values()),
                                       reflect_mapping(conn, config).embedders)
    changed = parse_mapping_config(BASE.replace('embedder = "mini"', 'embedder = "fn"'), "m")
    collection_versions.add_version(conn, reflect_mapping(conn, changed).table("notes"),
                                    reflect_mapping(conn, changed).embedders)
    mapping = reflect_mapping(conn, changed)
    conn.execute("INSERT INTO notes VALUES (1, 'Hello', 'world', 3, NULL)")
    conn.commit()
    notes = mapping.table("notes")
    entries = [Entry("notes", (k,), notes.uuid_for_key((k,))) for k in (1, 2)]  # 2: no row, so deleted
    job = Job(token="t1", batch_id="b1", partitions=(0,), lane="live", entries=entries, dispatched_at=0.0,
              next_check=0.0)
    built = build_payloads(conn, mapping, [job])["t1"]
    assert not built.refused
    assert sorted(o["collection"] for o in built.payload.upserts) == ["Notes_v1", "Notes_v2"]
    assert {o["uuid"] for o in built.payload.upserts} == {str(entries[0].object_id)}
    assert sorted((d.collection, d.uuid) for d in built.payload.deletes) == [
        ("Notes_v1", str(entries[1].object_id)), ("Notes_v2", str(entries[1].object_id))]
    assert mapping.write_collections() == ("Notes_v1", "Notes_v2", "Tags")  # the ticket's allowed collections
