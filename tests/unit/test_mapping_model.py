"""Rows to objects, content hashes, JSON transport and collection configs."""

from __future__ import annotations

import hashlib
import json
import pickle
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlite_to_weaviate.mapping.collections import collection_config
from sqlite_to_weaviate.mapping import (
    HASH_PROPERTY,
    ConversionError,
    MappingError,
    WeaviateObject,
    content_hash,
    encode_vector,
    object_uuid,
    parse_mapping_config,
    reflect_mapping,
    seed_preset_config,
    seed_schema_sql,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)

SCHEMA = """
CREATE TABLE items (
    id INTEGER PRIMARY KEY, name TEXT, big INTEGER, qty INT, price REAL, flag BOOLEAN,
    created DATETIME, seen INTEGER, doc JSON, raw BLOB, vec BLOB, org TEXT, parent INTEGER
);
CREATE TABLE hashed (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB, n);
"""
CONFIG = """
[tables.items]
vector_column = "vec"
tenant_column = "org"
[tables.items.columns.big]
type = "text"
[tables.items.columns.seen]
type = "date"
date_unit = "ms"
[tables.items.columns.doc]
type = "object"
nested = { k = "text" }
[tables.items.columns.name]
default = "unnamed"
[tables.items.metadata]
constants = { migrated_from_sqlite = true }
original_id = "originalId"
migration_timestamp = "migratedAt"
[[tables.items.references]]
column = "parent"
property = "parentItem"
target = "items"
"""


@pytest.fixture
def mapping():
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    return reflect_mapping(conn, parse_mapping_config(CONFIG))


def full_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "id": 7, "name": "héllo", "big": 2**63 - 1, "qty": -(2**53), "price": 2.5, "flag": 1,
        "created": "2024-05-06 07:08:09", "seen": 1714979289123, "doc": '{"k":"v"}', "raw": b"\x00\xff",
        "vec": encode_vector([0.5, -1.0]), "org": "acme", "parent": 3,
    }
    row.update(overrides)
    return row


def test_to_object_every_type(mapping) -> None:
    items = mapping.table("items")
    obj = items.to_object(full_row(), now=NOW)
    assert obj.uuid == object_uuid("items", (7,))
    assert obj.collection == "Items"
    assert obj.properties == {
        "sourceId": 7, "name": "héllo", "big": "9223372036854775807", "qty": -(2**53), "price": 2.5, "flag": True,
        "created": "2024-05-06T07:08:09Z", "seen": "2024-05-06T07:08:09.123Z", "doc": {"k": "v"}, "raw": "AP8=",
        "org": "acme", "parent": 3,
        "migrated_from_sqlite": True, "originalId": "7", "migratedAt": "2025-01-02T03:04:05.678Z",
        HASH_PROPERTY: obj.content_hash,
    }
    assert obj.vector == [0.5, -1.0]
    assert obj.tenant == "acme"
    assert obj.references == {"parentItem": [str(object_uuid("items", (3,)))]}
    assert obj.content_hash == content_hash(items, full_row())
    json.dumps(obj.to_json(), allow_nan=False)  # JSON-serializable, strictly


def test_nulls_are_absent_and_defaults_apply(mapping) -> None:
    items = mapping.table("items")
    row = {k: None for k in items.source_columns} | {"id": 1, "org": "acme"}
    obj = items.to_object(row, now=NOW)
    assert set(obj.properties) == {"sourceId", "name", "org", "migrated_from_sqlite", "originalId", "migratedAt",
                                   HASH_PROPERTY}
    assert obj.properties["name"] == "unnamed"
    assert obj.vector is None and obj.references == {}


@pytest.mark.parametrize("column, value, reason", [
    ("qty", 2**53 + 1, r"beyond \+-2\^53"),
    ("price", float("inf"), "not finite"),
    ("flag", 2, "not a boolean"),
    ("created", "not a date", "not an ISO 8601 date"),
    ("doc", '{"other":1}', "not a declared nested property"),
    ("vec", b"\x00", "multiple of 4"),
    ("org", None, "tenant column is NULL"),
    ("org", "bad tenant!", "not a valid Weaviate tenant name"),
    ("name", b"\xff", "not valid UTF-8"),
])
def test_conversion_errors_name_table_key_column(mapping, column, value, reason) -> None:
    with pytest.raises(ConversionError, match=reason) as info:
        mapping.table("items").to_object(full_row(**{column: value}))
    error = info.value
    assert (error.table, error.pk, error.column) == ("items", (7,), column)
    assert str(error).startswith(f"items[7].{column}: ")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.table, copy.pk, copy.column, copy.reason) == (error.table, error.pk, error.column, error.reason)


def test_null_primary_key_is_a_row_error() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (code TEXT PRIMARY KEY, v TEXT)")
    conn.execute("INSERT INTO t VALUES (NULL, 'x')")  # SQLite allows this in rowid tables
    table = reflect_mapping(conn).table("t")
    with pytest.raises(ConversionError, match="NULL cannot be part of a primary key") as info:
        table.to_object({"code": None, "v": "x"})
    assert (info.value.table, info.value.pk, info.value.column) == ("t", (None,), "code")


def test_missing_column_is_a_mapping_error(mapping) -> None:
    row = full_row()
    del row["price"]
    with pytest.raises(MappingError, match="lacks column 'price'"):
        mapping.table("items").to_object(row)
    with pytest.raises(MappingError, match="lacks primary-key column 'id'"):
        mapping.table("items").key_of({})


def test_json_round_trip(mapping) -> None:
    obj = mapping.table("items").to_object(full_row(), now=NOW)
    assert WeaviateObject.from_json(json.loads(json.dumps(obj.to_json()))) == obj


def test_named_vectors() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a BLOB, b BLOB)")
    config = parse_mapping_config('[tables.t.vectors.first]\ncolumn = "a"\n[tables.t.vectors.second]\ncolumn = "b"\n')
    table = reflect_mapping(conn, config).table("t")
    obj = table.to_object({"id": 1, "a": encode_vector([1.0]), "b": None})
    assert obj.vector == {"first": [1.0]}
    assert table.to_object({"id": 1, "a": None, "b": None}).vector is None
    kwargs = collection_config(table)
    assert [v.name for v in kwargs["vector_config"]] == ["first", "second"]


# ---- content hash ----------------------------------------------------------------

@pytest.fixture
def hashed(mapping):
    return mapping.table("hashed")


def test_content_hash_known_value(hashed) -> None:
    row = {"id": 1, "name": "héllo", "score": 1.5, "data": b"\x00\xff", "n": None}
    expected = "ad6fd008774303862e48641379b5bf1adbc5242e70fb84b6ffa130e8447d8efa"
    assert content_hash(hashed, row) == expected
    # The formula documented in docs/mapping.md, written out by hand:
    payload = '["s2w-content-v1","hashed",[["id",1],["name","héllo"],["score",{"f":"1.5"}],' \
              '["data",{"b":"AP8="}],["n",null]]]'
    assert hashlib.sha256(payload.encode("utf-8")).hexdigest() == expected


def test_content_hash_is_type_aware_and_sensitive(hashed) -> None:
    base = {"id": 1, "name": "x", "score": 1.0, "data": None, "n": 1}
    seen = {content_hash(hashed, base)}
    for change in ({"n": "1"}, {"n": 1.0}, {"n": b"1"}, {"n": None}, {"score": 1.0000000000000002},
                   {"name": "y"}, {"data": b""}, {"name": ""}):
        seen.add(content_hash(hashed, base | change))
    assert len(seen) == 9
    assert content_hash(hashed, base | {"extra": 5}) == content_hash(hashed, base)  # only source columns


def test_content_hash_stable_across_processes(hashed) -> None:
    code = (
        "import sqlite3; from sqlite_to_weaviate.mapping import reflect_mapping, content_hash\n"
        "c = sqlite3.connect(':memory:')\n"
        "c.execute('CREATE TABLE hashed (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB, n)')\n"
        "print(content_hash(reflect_mapping(c).table('hashed'), "
        "{'id': 2**62, 'name': 'ü', 'score': 0.1, 'data': b'z', 'n': None}))"
    )
    env_out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                             check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    row = {"id": 2**62, "name": "ü", "score": 0.1, "data": b"z", "n": None}
    assert env_out.stdout.strip() == content_hash(hashed, row)


def test_hash_ignores_migration_timestamp(mapping) -> None:
    items = mapping.table("items")
    a = items.to_object(full_row(), now=NOW)
    b = items.to_object(full_row(), now=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert a.content_hash == b.content_hash and a.uuid == b.uuid
    assert a.properties["migratedAt"] != b.properties["migratedAt"]


# ---- collection config -----------------------------------------------------------

def test_collection_config(mapping) -> None:
    from weaviate.classes.config import DataType as W

    kwargs = collection_config(mapping.table("items"), name_prefix="Test_")
    assert kwargs["name"] == "Test_Items"
    props = {p.name: p for p in kwargs["properties"]}
    assert props[HASH_PROPERTY].dataType is W.TEXT
    assert props[HASH_PROPERTY].indexFilterable is True and props[HASH_PROPERTY].indexSearchable is False
    assert props["big"].dataType is W.TEXT and props["qty"].dataType is W.INT and props["raw"].dataType is W.BLOB
    assert props["doc"].dataType is W.OBJECT and [n.name for n in props["doc"].nestedProperties] == ["k"]
    assert props["migratedAt"].dataType is W.DATE and props["migrated_from_sqlite"].dataType is W.BOOL
    assert [(r.name, r.target_collection) for r in kwargs["references"]] == [("parentItem", "Test_Items")]
    assert kwargs["multi_tenancy_config"].enabled
    assert collection_config(mapping.table("items").with_collection("Other"))["name"] == "Other"
    assert "multi_tenancy_config" not in collection_config(mapping.table("hashed"))


def test_vectorizer_configs() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, title TEXT)")
    config = parse_mapping_config('[tables.t]\nvectorizer = "text2vec-transformers"\n'
                                  '[tables.t.columns.body]\nvectorize = true\n')
    kwargs = collection_config(reflect_mapping(conn, config).table("t"))
    assert kwargs["vector_config"].vectorizer.vectorizer.value == "text2vec-transformers"
    assert kwargs["vector_config"].properties == ["body"]
    bad = parse_mapping_config('[tables.t]\nvectorizer = "text2vec-transformer"\n')
    with pytest.raises(MappingError, match="unknown vectorizer 'text2vec-transformer'; did you mean text2vec-transformers"):
        collection_config(reflect_mapping(conn, bad).table("t"))
    with pytest.raises(MappingError, match="does not vectorize text"):
        collection_config(reflect_mapping(conn, parse_mapping_config('vectorizer = "img2vec-neural"\n')).table("t"))


def test_preset_objects() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(seed_schema_sql())
    conn.execute("INSERT INTO conversations (id, created_at) VALUES ('c1', '2024-01-01 00:00:00')")
    conn.execute("INSERT INTO messages (id, conversation_id, role, created_at) VALUES ('m1', 'c1', 'user', "
                 "'2024-01-01 00:00:01')")
    mapping = reflect_mapping(conn, seed_preset_config())
    conv = mapping.table("conversations")
    cursor = conn.execute(conv.select_sql())
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
    obj = conv.to_object(row, now=NOW)
    assert obj.properties["title"] == "Untitled Conversation" and obj.properties["userId"] == "unknown"
    assert obj.properties["metadata"] == {"migrated_from_sqlite": True, "original_id": "c1",
                                          "migration_timestamp": "2025-01-02T03:04:05.678Z"}
    msg = mapping.table("messages")
    cursor = conn.execute(msg.select_sql())
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
    obj = msg.to_object(row, now=NOW)
    assert obj.properties["toolCalls"] == "{}"
    assert obj.references == {"conversation": [str(conv.uuid_for_key(("c1",)))]}


# ---- row -> object -> compare, for arbitrary rows ---------------------------------

sqlite_values = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                          st.floats(allow_nan=False), st.text(), st.binary(max_size=16))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), sqlite_values, sqlite_values)
def test_any_row_converts_or_fails_cleanly(key: int, a: Any, b: Any) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER)")
    table = reflect_mapping(conn).table("t")
    try:
        obj = table.to_object({"id": key, "a": a, "b": b})
    except ConversionError as error:
        assert error.table == "t" and error.pk == (key,) and error.column in ("id", "a", "b")
        return
    if a is None:
        assert "a" not in obj.properties
    elif isinstance(a, float):
        assert float(obj.properties["a"]) == a
    elif isinstance(a, bytes):
        assert obj.properties["a"] == a.decode("utf-8")
    else:
        assert obj.properties["a"] == str(a)
    if b is not None:
        assert obj.properties["b"] == int(b) and abs(obj.properties["b"]) <= 2**53
    assert WeaviateObject.from_json(json.loads(json.dumps(obj.to_json(), allow_nan=False))) == obj
