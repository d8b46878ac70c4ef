"""Mapping against the real Weaviate: collections from the defaults, a config file and
the seed preset; objects of every type written and read back equal under the documented
rules (docs/mapping.md)."""

from __future__ import annotations

import base64
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sqlite_to_weaviate.mapping import (
    HASH_PROPERTY,
    DataType,
    MappingError,
    TableMapping,
    WeaviateObject,
    encode_vector,
    ensure_collections,
    load_mapping_config,
    reflect_mapping,
    seed_preset_config,
    seed_schema_sql,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def client(weaviate_client: Any) -> Any:
    return weaviate_client


@pytest.fixture
def prefix(collection_prefix: str, client: Any) -> Any:
    cleaned = "".join(ch for ch in collection_prefix if ch.isascii() and (ch.isalnum() or ch == "_"))
    cleaned = cleaned if cleaned[:1].isupper() else "T" + cleaned
    yield cleaned
    for name in list(client.collections.list_all()):
        if name.startswith(cleaned):
            client.collections.delete(name)


def _rows(conn: sqlite3.Connection, tm: TableMapping) -> list[dict[str, Any]]:
    cursor = conn.execute(tm.select_sql())
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values)) for values in cursor.fetchall()]


def _write(client: Any, prefix: str, objects: list[WeaviateObject]) -> None:
    from weaviate.classes.data import DataObject

    for obj in objects:
        # Through JSON, as the relay sends them to workers.
        obj = WeaviateObject.from_json(obj.to_json())
        collection = client.collections.get(prefix + obj.collection)
        if obj.tenant:
            collection = collection.with_tenant(obj.tenant)
        result = collection.data.insert_many(
            [DataObject(properties=obj.properties, uuid=obj.uuid, vector=obj.vector, references=obj.references or None)]
        )
        assert not result.has_errors, result.errors


def _parse_date(value: Any) -> datetime:
    """RFC 3339 text or the client's datetime; fractions beyond microseconds truncated
    (Python datetimes, like the client's, stop at microseconds)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(re.sub(r"\.([0-9]{6})[0-9]+", r".\1", value.replace("Z", "+00:00")))


def _assert_equal_value(expected: Any, got: Any, data_type: DataType | None, where: str) -> None:
    if data_type is DataType.DATE:
        assert _parse_date(got) == _parse_date(expected), where
    elif data_type is DataType.NUMBER:
        assert float(got) == expected, where
    else:
        assert got == expected, where


def _assert_read_back(client: Any, prefix: str, tm: TableMapping, obj: WeaviateObject) -> None:
    from weaviate.classes.query import QueryNested, QueryReference

    collection = client.collections.get(prefix + tm.collection)
    if obj.tenant:
        collection = collection.with_tenant(obj.tenant)
    names: list[Any] = [
        QueryNested(name=c.property, properties=[n for n, _ in c.nested]) if c.nested else c.property
        for c in tm.columns
    ] + [HASH_PROPERTY]
    if tm.metadata.property:
        names.append(QueryNested(name=tm.metadata.property, properties=[n for n, _ in tm.metadata.fields()]))
    else:
        names += [n for n, _ in tm.metadata.fields()]
    stored = collection.query.fetch_object_by_id(
        obj.uuid,
        include_vector=True,
        return_properties=names,
        # Weaviate v1.35 cannot resolve references from a tenant to a non-tenant collection
        # in a query ("multi-tenancy disabled, but request was with tenant"); check those elsewhere.
        return_references=None if obj.tenant else
        [QueryReference(link_on=r.property, return_properties=[]) for r in tm.references] or None,
    )
    assert stored is not None, f"{tm.table}: object {obj.uuid} not found"
    types = {c.property: c.data_type for c in tm.columns}
    meta_types = dict(tm.metadata.fields())
    got_props = {k: v for k, v in stored.properties.items() if v is not None}
    assert set(got_props) == set(obj.properties), tm.table
    for name, expected in obj.properties.items():
        if name == tm.metadata.property:
            for key, value in expected.items():
                _assert_equal_value(value, got_props[name][key], meta_types[key], f"{tm.table}.{name}.{key}")
        else:
            column = next((c for c in tm.columns if c.property == name), None)
            if column is not None and column.nested:
                nested_types = dict(column.nested)
                got_nested = {k: v for k, v in got_props[name].items() if v is not None}
                assert set(got_nested) == set(expected), f"{tm.table}.{name}"
                for key, value in expected.items():
                    _assert_equal_value(value, got_nested[key], nested_types[key], f"{tm.table}.{name}.{key}")
            else:
                _assert_equal_value(expected, got_props[name], types.get(name) or meta_types.get(name),
                                    f"{tm.table}.{name}")
    if isinstance(obj.vector, list):
        assert stored.vector["default"] == obj.vector
    elif isinstance(obj.vector, dict):
        for name, vector in obj.vector.items():
            assert stored.vector[name] == vector
    for reference in [] if obj.tenant else tm.references:
        expected_refs = obj.references.get(reference.property, [])
        got_refs = stored.references.get(reference.property) if stored.references else None
        got_ids = [str(o.uuid) for o in got_refs.objects] if got_refs else []
        assert got_ids == expected_refs, f"{tm.table}.{reference.property}"


SEED_ROWS = """
INSERT INTO conversations VALUES ('c1', 'Trip planning', 'u1', '2024-03-01 10:00:00', '2024-03-01T12:30:45.123456+02:00', 1);
INSERT INTO conversations (id, title, user_id, created_at, is_active) VALUES ('c2', NULL, NULL, '2024-03-02', 0);
INSERT INTO messages VALUES ('m1', 'c1', 'user', 'Where to go in June? ünïcödé ✓', '2024-03-01T10:00:01Z', NULL, '{"lang":"en"}', 9007199254740992);
INSERT INTO messages VALUES ('m2', 'c1', 'assistant', NULL, '2024-03-01T10:00:02.5Z', '[{"name":"search"}]', NULL, -9007199254740992);
INSERT INTO documents VALUES ('d1', 'Guide', 'Long text', 'https://example.org', 'pdf', 123456, '2024-01-01 00:00:00', NULL, '{}');
INSERT INTO agent_interactions VALUES (1, 'c1', 'planner', 'in', 'out', 'search', 0.875, 120, 1, '2024-03-01 10:00:03.250', NULL);
INSERT INTO agent_interactions VALUES (2, NULL, 'planner', NULL, NULL, NULL, -1.5e-300, NULL, 0, '2024-03-01 10:00:04', '{"k":1}');
"""


def test_seed_preset_round_trip(client: Any, prefix: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(seed_schema_sql())
    conn.executescript(SEED_ROWS)
    conn.execute("INSERT INTO document_chunks VALUES ('k1', 'd1', 0, 'chunk', 3, ?, '2024-01-01 00:00:00')",
                 (encode_vector([0.1, -2.5, 3.0e-8, 1e30]),))
    conn.execute("INSERT INTO document_chunks VALUES ('k2', 'd1', 1, 'chunk 2', NULL, NULL, '2024-01-01 00:00:00')")
    conn.execute("INSERT INTO multimodal_content VALUES ('x1', 'c2', 'image', 'image/png', 'a red dot', ?, 4, 1709287200123)",
                 (bytes([0, 255, 1, 254]),))
    mapping = reflect_mapping(conn, seed_preset_config())
    actions = ensure_collections(client, mapping, name_prefix=prefix)
    assert len([a for a in actions if a.startswith("created")]) == 6
    assert ensure_collections(client, mapping, name_prefix=prefix) == []  # idempotent

    for tm in mapping.collections_in_order():  # Weaviate refuses references to missing objects
        objects = [tm.to_object(row) for row in _rows(conn, tm)]
        _write(client, prefix, objects)
        for obj in objects:
            _assert_read_back(client, prefix, tm, obj)

    chunk = client.collections.get(prefix + "DocumentChunk").query.fetch_object_by_id(
        mapping.table("document_chunks").uuid_for_key(("k1",)), include_vector=True)
    assert encode_vector(chunk.vector["default"]) == encode_vector([0.1, -2.5, 3.0e-8, 1e30])
    blob = client.collections.get(prefix + "MultiModal").query.fetch_object_by_id(
        mapping.table("multimodal_content").uuid_for_key(("x1",)), return_properties=["data"])
    assert base64.b64decode(blob.properties["data"]) == bytes([0, 255, 1, 254])


CONFIG = """
[tables.items]
collection = "Item"
[tables.items.columns.big]
type = "text"
[tables.items.columns.doc]
type = "object"
nested = { name = "text", count = "int", when = "date" }
[tables.items.columns.seen]
type = "date"
date_unit = "ms"
[tables.items.vectors.body]
column = "body_vec"
[tables.items.vectors.title]
column = "title_vec"

[tables.scoped]
tenant_column = "tenant"
[[tables.scoped.references]]
column = "item_id"
property = "item"
target = "items"
"""


def test_defaults_and_config_file(client: Any, prefix: str, tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript("""
        CREATE TABLE items (
            id INTEGER PRIMARY KEY, name TEXT, big INTEGER, qty INT, price REAL, flag BOOLEAN,
            created DATETIME, seen INTEGER, doc JSON, raw BLOB, body_vec BLOB, title_vec BLOB, anything,
            half GENERATED ALWAYS AS (price / 2) STORED
        );
        CREATE TABLE scoped (tenant TEXT NOT NULL, code TEXT NOT NULL, item_id INTEGER, note TEXT,
                             PRIMARY KEY (tenant, code)) WITHOUT ROWID;
        CREATE TABLE nokey (a, b);
    """)
    conn.execute(
        "INSERT INTO items (id, name, big, qty, price, flag, created, seen, doc, raw, body_vec, title_vec, anything) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (1, "first", 2**63 - 1, -(2**53), 3.141592653589793, 1, "2024-05-06T07:08:09.123456789-05:30", 1714979289123,
         '{"name":"n","count":3,"when":"2024-01-01T00:00:00Z","gone":null}', b"\x00\x01\xff",
         encode_vector([1.0, 2.0]), encode_vector([0.5]), 42),
    )
    conn.execute("INSERT INTO items (id, big, anything) VALUES (2, -(9223372036854775807) - 1, X'68C3A9')")
    conn.execute("INSERT INTO scoped VALUES ('tenantA', 'x', 1, 'hello'), ('tenantB', 'x', '2', NULL)")
    config_file = tmp_path / "mapping.toml"
    config_file.write_text(CONFIG)
    mapping = reflect_mapping(conn, load_mapping_config(config_file))
    assert "nokey" in mapping.skipped
    ensure_collections(client, mapping, name_prefix=prefix)
    for tm in mapping.collections_in_order():  # Weaviate refuses references to missing objects
        objects = [tm.to_object(row) for row in _rows(conn, tm)]
        _write(client, prefix, objects)
        for obj in objects:
            _assert_read_back(client, prefix, tm, obj)
    item = mapping.table("items").to_object(_rows(conn, mapping.table("items"))[0])
    assert item.properties["big"] == "9223372036854775807"
    assert item.properties["created"] == "2024-05-06T12:38:09.123456789Z"


def test_added_property_and_incompatible_change(client: Any, prefix: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    ensure_collections(client, reflect_mapping(conn), name_prefix=prefix)
    conn.execute("ALTER TABLE notes ADD COLUMN stars INTEGER")
    actions = ensure_collections(client, reflect_mapping(conn), name_prefix=prefix)
    assert actions == [f"added property {prefix}Notes.stars (int)"]
    conn.execute("ALTER TABLE notes ADD COLUMN body2 TEXT")
    from sqlite_to_weaviate.mapping import parse_mapping_config

    config = parse_mapping_config('[tables.notes.columns.stars]\ntype = "text"\n')
    with pytest.raises(MappingError, match="stars.*int in Weaviate.*text"):
        ensure_collections(client, reflect_mapping(conn, config), name_prefix=prefix)


def test_reference_to_missing_target_fact(client: Any, prefix: str) -> None:
    """Fact the writer depends on (Weaviate v1.35): an object carrying a reference to a
    not-yet-written target is refused, while a batch ``add_reference`` to a missing target
    is accepted and resolves once the target exists."""
    from weaviate.classes.data import DataObject
    from weaviate.classes.query import QueryReference

    conn = sqlite3.connect(":memory:")
    conn.executescript(seed_schema_sql())
    conn.execute("INSERT INTO conversations (id, created_at) VALUES ('c9', '2024-01-01')")
    conn.execute("INSERT INTO messages (id, conversation_id, role, created_at) VALUES ('m9', 'c9', 'user', '2024-01-01')")
    mapping = reflect_mapping(conn, seed_preset_config())
    ensure_collections(client, mapping, name_prefix=prefix)
    message = mapping.table("messages").to_object(_rows(conn, mapping.table("messages"))[0])
    conversation = mapping.table("conversations").to_object(_rows(conn, mapping.table("conversations"))[0])
    messages = client.collections.get(prefix + "Message")

    from weaviate.exceptions import WeaviateInsertManyAllFailedError

    with pytest.raises(WeaviateInsertManyAllFailedError, match="no object with id"):
        messages.data.insert_many(
            [DataObject(properties=message.properties, uuid=message.uuid, references=message.references)]
        )

    messages.data.insert(properties=message.properties, uuid=message.uuid)
    with client.batch.fixed_size(batch_size=10) as batch:
        for prop, targets in message.references.items():
            for target in targets:
                batch.add_reference(from_uuid=message.uuid, from_collection=prefix + "Message",
                                    from_property=prop, to=target)
    assert not client.batch.failed_references
    _write(client, prefix, [conversation])
    stored = messages.query.fetch_object_by_id(
        message.uuid, return_references=[QueryReference(link_on="conversation", return_properties=[])])
    assert [str(o.uuid) for o in stored.references["conversation"].objects] == message.references["conversation"]
