"""Default mapping reflected from a live SQLite schema, and config applied to it."""

from __future__ import annotations

import sqlite3

import pytest

from sqlite_to_weaviate.mapping import (
    NO_PRIMARY_KEY,
    DataType,
    MappingError,
    infer_type,
    parse_mapping_config,
    reflect_mapping,
    seed_preset_config,
    seed_schema_sql,
)
from sqlite_to_weaviate.mapping.reflect import VIEW


def db(sql: str) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(sql)
    return conn


@pytest.mark.parametrize("declared, expected", [
    ("INTEGER", DataType.INT), ("BIGINT", DataType.INT), ("INT", DataType.INT), ("UNSIGNED BIG INT", DataType.INT),
    ("TEXT", DataType.TEXT), ("VARCHAR(255)", DataType.TEXT), ("CLOB", DataType.TEXT), ("", DataType.TEXT),
    ("REAL", DataType.NUMBER), ("DOUBLE PRECISION", DataType.NUMBER), ("FLOAT", DataType.NUMBER),
    ("NUMERIC", DataType.NUMBER), ("DECIMAL(10,2)", DataType.NUMBER),
    ("BOOLEAN", DataType.BOOLEAN), ("bool", DataType.BOOLEAN),
    ("DATETIME", DataType.DATE), ("TIMESTAMP", DataType.DATE), ("DATE", DataType.DATE),
    ("BLOB", DataType.BLOB), ("JSON", DataType.TEXT), ("ANY", DataType.TEXT), ("any", DataType.TEXT),
])
def test_infer_type(declared, expected) -> None:
    assert infer_type(declared)[0] is expected
    assert infer_type("JSON")[1] == "text"


def test_seed_preset_mapping() -> None:
    mapping = reflect_mapping(db(seed_schema_sql()), seed_preset_config())
    assert {t.collection for t in mapping.tables.values()} == {
        "Conversation", "Message", "Document", "DocumentChunk", "AgentInteraction", "MultiModal"}
    assert mapping.skipped == {}
    conv = mapping.table("conversations")
    assert [c.property for c in conv.columns] == [
        "conversationId", "title", "userId", "createdAt", "updatedAt", "isActive"]
    assert conv.column("title").default == "Untitled Conversation" and conv.column("title").vectorize
    assert conv.column("is_active").data_type is DataType.BOOLEAN
    assert conv.metadata.property == "metadata"
    msg = mapping.table("messages")
    assert msg.column("tool_calls").default == "{}" and msg.column("tool_calls").json_as == "text"
    assert [(r.property, r.target_collection) for r in msg.references] == [("conversation", "Conversation")]
    chunks = mapping.by_collection("DocumentChunk")
    assert chunks.vector_column == "embedding" and "embedding" in chunks.source_columns
    assert "embedding" not in [c.column for c in chunks.columns]
    mm = mapping.table("multimodal_content")
    assert mm.column("created_at").data_type is DataType.DATE and mm.column("created_at").date_unit == "ms"
    assert mm.column("data").data_type is DataType.BLOB
    agent = mapping.table("agent_interactions")
    assert agent.column("score").data_type is DataType.NUMBER
    order = [t.table for t in mapping.collections_in_order()]
    assert order.index("conversations") < order.index("messages")
    assert order.index("documents") < order.index("document_chunks")


def test_skips_and_internal_tables() -> None:
    from sqlite_to_weaviate import capture

    conn = db("""
        CREATE TABLE keyed (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
        CREATE TABLE nokey (a, b);
        CREATE VIRTUAL TABLE search USING fts5(body);
    """)
    conn.isolation_level = None
    capture.install(conn, ["keyed"])  # the tool's own tables are never mapped
    mapping = reflect_mapping(conn)
    assert list(mapping.tables) == ["keyed"]
    assert mapping.skipped["nokey"] == NO_PRIMARY_KEY
    assert "virtual table" in mapping.skipped["search"]
    assert "shadow" in mapping.skipped["search_data"]
    assert not any(name.startswith(("_s2w_", "sqlite_")) for name in list(mapping.tables) + list(mapping.skipped))
    with pytest.raises(MappingError, match=r"table 'nokey' is not mapped \(skipped: no declared primary key"):
        mapping.table("nokey")
    with pytest.raises(MappingError, match=r"'nope' is not mapped; mapped tables: \['keyed'\]"):
        mapping.table("nope")
    with pytest.raises(MappingError, match="no table maps to collection 'Nope'"):
        mapping.by_collection("Nope")


def test_an_app_table_with_the_tools_prefix_is_the_apps() -> None:
    """Only the registry says which tables are the tool's: a name prefix proves nothing."""
    conn = db("""
        CREATE TABLE _s2w_notes (id INTEGER PRIMARY KEY, body TEXT);
        CREATE TABLE _S2W_OUTBOX (seq INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT);
    """)
    assert sorted(reflect_mapping(conn).tables) == ["_S2W_OUTBOX", "_s2w_notes"]
    assert reflect_mapping(conn).table("_s2w_notes").collection == "S2wNotes"


def test_without_rowid_composite_key_order_and_generated_columns() -> None:
    conn = db("""
        CREATE TABLE pairs (b TEXT, a INTEGER, total REAL, twice GENERATED ALWAYS AS (total * 2) VIRTUAL,
                            stored GENERATED ALWAYS AS (a + 1) STORED,
                            PRIMARY KEY (a, b)) WITHOUT ROWID;
    """)
    conn.execute('CREATE TABLE plain (pk INT PRIMARY KEY, "weird ""name""" TEXT)')
    mapping = reflect_mapping(conn)
    pairs = mapping.table("pairs")
    assert pairs.primary_key == ("a", "b")
    assert pairs.source_columns == ("a", "b", "total", "twice", "stored")
    assert pairs.column("twice").data_type is DataType.TEXT  # no declared type
    plain = mapping.table("plain")
    assert plain.select_sql() == 'SELECT "pk", "weird ""name""" FROM "plain"'
    assert plain.column('weird "name"').property == "weirdName"
    conn.execute("INSERT INTO pairs (b, a, total) VALUES ('x', 1, 2.5)")
    cursor = conn.execute(pairs.select_sql())
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
    assert row == {"a": 1, "b": "x", "total": 2.5, "twice": 5.0, "stored": 2}
    assert pairs.key_of(row) == (1, "x")


def test_config_applied_and_references() -> None:
    conn = db("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, secret TEXT, embedding BLOB, org TEXT NOT NULL);
        CREATE TABLE posts (id TEXT PRIMARY KEY, user_id TEXT, body TEXT);
        CREATE TABLE audit (id INTEGER PRIMARY KEY);
    """)
    config = parse_mapping_config("""
        exclude = ["audit"]
        [tables.users]
        collection = "Person"
        exclude_columns = ["secret"]
        vector_column = "embedding"
        tenant_column = "org"
        vectorizer = "text2vec-transformers"
        [tables.users.columns.name]
        vectorize = true
        searchable = false
        [[tables.posts.references]]
        column = "user_id"
        property = "author"
        target = "users"
    """, "m.toml")
    mapping = reflect_mapping(conn, config)
    users = mapping.table("users")
    assert users.collection == "Person" and users.tenant_column == "org"
    assert [c.column for c in users.columns] == ["id", "name", "org"]
    assert users.source_columns == ("id", "name", "org", "embedding")
    assert users.vectorizer == "text2vec-transformers"
    assert users.column("name").index_searchable is False
    assert mapping.skipped["audit"] == "listed in `exclude` of the mapping config"
    ref = mapping.table("posts").references[0]
    assert (ref.target_collection, ref.target_key_type) == ("Person", DataType.INT)
    assert ref.target_uuid("5") == users.uuid_for_key((5,))  # SQLite-affinity coercion
    assert mapping.table("posts").source_columns == ("id", "user_id", "body")


@pytest.mark.parametrize("schema, config, message", [
    ("CREATE TABLE t (id INTEGER PRIMARY KEY)", "[tables.tt]\n",
     r"m\.toml: tables: table 'tt' does not exist in the database — did you mean 't'\?"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY)", 'include = ["x"]\n', r"include: table 'x' does not exist"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)", "[tables.t.columns.bdy]\n",
     r"m\.toml: tables\.t\.columns\.bdy: column 'bdy' does not exist in table 't' — did you mean 'body'\?"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY)", '[tables.t]\nvector_column = "emb"\n', r"vector_column: column 'emb'"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, created_at TEXT, createdAt TEXT)", "",
     r"column 'createdAt' and column 'created_at' both map to property 'createdAt'"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, _id TEXT)", "", r"both map to property 'sourceId'"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, c TEXT)",
     '[tables.t.columns.c]\nproperty = "sourceId"\n', r"both map to property 'sourceId'"),
    ("CREATE TABLE a_b (id INTEGER PRIMARY KEY); CREATE TABLE \"a-b\" (id INTEGER PRIMARY KEY)", "",
     r"tables 'a-b' and 'a_b' both map to collection 'AB'"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, p INT)",
     '[[tables.t.references]]\ncolumn = "p"\nproperty = "parent"\ntarget = "nokey"\n',
     r"references\[0\]\.target: table 'nokey' is not mapped"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, p INT); CREATE TABLE c (a, b, PRIMARY KEY (a, b))",
     '[[tables.t.references]]\ncolumn = "p"\nproperty = "parent"\ntarget = "c"\n', r"composite primary key"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, p INT)",
     '[[tables.t.references]]\ncolumn = "p"\nproperty = "p"\ntarget = "t"\n',
     r"reference on column 'p' and column 'p' both map to property 'p'"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, n INT)", '[tables.t.columns.n]\ndate_unit = "ms"\n',
     r"date_unit is set but the column maps to int; add type = \"date\""),
    ("CREATE TABLE t (x)", "[tables.t]\n", r"configured but not mapped \(no declared primary key"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, originalId TEXT)", '[metadata]\noriginal_id = "originalId"\n',
     r"metadata and column 'originalId' both map to property 'originalId'"),
])
def test_reflect_errors(schema: str, config: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        reflect_mapping(db(schema), parse_mapping_config(config, "m.toml"))


def test_self_reference_and_order() -> None:
    conn = db("CREATE TABLE node (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES node(id))")
    config = parse_mapping_config('[[tables.node.references]]\ncolumn = "parent"\nproperty = "parentNode"\ntarget = "node"\n')
    mapping = reflect_mapping(conn, config)
    assert [t.table for t in mapping.collections_in_order()] == ["node"]


def test_reflect_ignores_the_apps_row_factory() -> None:
    conn = db("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.row_factory = lambda cursor, row: {d[0]: v for d, v in zip(cursor.description, row)}
    assert reflect_mapping(conn).table("t").source_columns == ("id", "v")


def test_mapping_from_sqlalchemy_models() -> None:
    from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
    from sqlalchemy.orm import DeclarativeBase, mapped_column

    from sqlite_to_weaviate.mapping import reflect_mapping_from_models

    class Base(DeclarativeBase):
        pass

    class Conversation(Base):
        __tablename__ = "conversations"
        id = mapped_column(String(36), primary_key=True)
        is_active = mapped_column(Boolean)
        created_at = mapped_column(DateTime)

    class Message(Base):
        __tablename__ = "messages"
        id = mapped_column(Integer, primary_key=True)
        conversation_id = mapped_column(ForeignKey("conversations.id"))
        content = mapped_column(Text)
        score = mapped_column(Float)
        extra = mapped_column(JSON)
        raw = mapped_column(LargeBinary)

    config = parse_mapping_config('[[tables.messages.references]]\ncolumn = "conversation_id"\n'
                                  'property = "conversation"\ntarget = "conversations"\n')
    mapping = reflect_mapping_from_models(Base.metadata, config)
    conv, msg = mapping.table("conversations"), mapping.table("messages")
    assert [(c.property, c.data_type) for c in conv.columns] == [
        ("sourceId", DataType.TEXT), ("isActive", DataType.BOOLEAN), ("createdAt", DataType.DATE)]
    assert {c.property: c.data_type for c in msg.columns} == {
        "sourceId": DataType.INT, "conversationId": DataType.TEXT, "content": DataType.TEXT,
        "score": DataType.NUMBER, "extra": DataType.TEXT, "raw": DataType.BLOB}
    assert msg.column("extra").json_as == "text"
    assert msg.references[0].target_collection == "Conversations"


def test_views_are_skipped_with_a_reason() -> None:
    conn = db("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, active BOOLEAN);
        CREATE VIEW active_customers AS SELECT id FROM customers WHERE active;
    """)
    mapping = reflect_mapping(conn)
    assert list(mapping.tables) == ["customers"]
    assert mapping.skipped == {"active_customers": VIEW}
    with pytest.raises(MappingError, match=r"configured but not mapped \(view: it stores no rows"):
        reflect_mapping(conn, parse_mapping_config("[tables.active_customers]\n", "m.toml"))


def test_strict_any_column_is_text() -> None:
    mapping = reflect_mapping(db("CREATE TABLE s (id INTEGER PRIMARY KEY, v ANY, n INT) STRICT"))
    assert mapping.table("s").column("v").data_type is DataType.TEXT
    assert mapping.table("s").column("n").data_type is DataType.INT


def test_underivable_or_long_column_names() -> None:
    conn = db('CREATE TABLE "Order Details" (id INTEGER PRIMARY KEY, "日本" TEXT)')
    with pytest.raises(MappingError, match=r"table 'Order Details': cannot derive a property name from column '日本'.*"
                                           r"\[tables\.\"Order Details\"\.columns\.\"日本\"\] property = "):
        reflect_mapping(conn)
    long = "reading_" * 40
    conn = db(f'CREATE TABLE t (id INTEGER PRIMARY KEY, "{long}a" REAL, "{long}b" REAL)')
    properties = [c.property for c in reflect_mapping(conn).table("t").columns][1:]
    assert [len(p) for p in properties] == [231, 231] and properties[0] != properties[1]
    assert properties[0].startswith("reading" + "Reading" * 30)


def test_shadow_tables_of_a_module_not_loaded_here_are_skipped(tmp_path) -> None:
    """sqlite-vec's vec0 (or any module this process lacks): its shadow tables look ordinary to SQLite."""
    path = tmp_path / "vec.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE VIRTUAL TABLE items_vec USING fts5(x);
        CREATE TABLE items_vec_notes (id INTEGER PRIMARY KEY, note TEXT);
        CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT);
        PRAGMA writable_schema = ON;
        UPDATE sqlite_master SET sql = replace(sql, 'fts5', 'vec0') WHERE name = 'items_vec';
    """)
    conn.close()
    conn = sqlite3.connect(path)  # the schema now names a module this process does not have
    mapping = reflect_mapping(conn)
    assert list(mapping.tables) == ["items"]
    assert "virtual table" in mapping.skipped["items_vec"]
    for shadow in ("items_vec_data", "items_vec_idx", "items_vec_content", "items_vec_docsize", "items_vec_config",
                   "items_vec_notes"):
        assert "probably a shadow table of virtual table 'items_vec', whose module 'vec0'" in mapping.skipped[shadow]
    # a table that really is application data is mapped when the user says so
    explicit = reflect_mapping(conn, parse_mapping_config('include = ["items", "items_vec_notes"]\n', "m.toml"))
    assert sorted(explicit.tables) == ["items", "items_vec_notes"]
    explicit = reflect_mapping(conn, parse_mapping_config("[tables.items_vec_notes]\n", "m.toml"))
    assert "items_vec_notes" in explicit.tables and "items_vec_data" not in explicit.tables
