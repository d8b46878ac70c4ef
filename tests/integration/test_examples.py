"""The example chat app: its models are the preset's schema, its data maps, its writes are captured.

Real SQLite files throughout; the search test writes the sample chunks into the real
Weaviate and checks that the pseudo-embeddings make a near-vector query land on topic.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from examples.chat_app import Base, build_sample_database, embed_text, run_traffic
from examples.chat_app.embed import EMBEDDING_DIM, cosine_similarity
from examples.chat_app.content import TOPICS
from examples.chat_app.models import TABLES
from sqlite_to_weaviate.capture import install
from sqlite_to_weaviate.store.lanes import read_outbox
from sqlite_to_weaviate.mapping import (
    decode_vector,
    ensure_collections,
    reflect_mapping,
    reflect_mapping_from_models,
    seed_preset_config,
    seed_schema_sql,
)

REPO = Path(__file__).resolve().parents[2]


def describe_table(conn: sqlite3.Connection, table: str) -> tuple:
    """Everything SQLite knows about a table's shape: columns, foreign keys, indexes, rowid."""
    return (
        conn.execute("SELECT * FROM pragma_table_xinfo(?)", (table,)).fetchall(),
        conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,)).fetchall(),
        conn.execute('SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY name', (table,)).fetchall(),
        conn.execute("SELECT type, ncol, wr, strict FROM pragma_table_list WHERE name = ?", (table,)).fetchall(),
    )


def rows_of(conn: sqlite3.Connection, select_sql: str) -> list[dict]:
    cursor = conn.execute(select_sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    path = tmp_path / "chat.db"
    build_sample_database(path, conversations=40, seed=1)
    return path


def test_models_create_exactly_the_preset_schema(tmp_path: Path):
    from_sql = sqlite3.connect(tmp_path / "sql.db")
    from_sql.executescript(seed_schema_sql())
    engine = create_engine(f"sqlite:///{tmp_path / 'models.db'}")
    Base.metadata.create_all(engine)
    engine.dispose()
    from_models = sqlite3.connect(tmp_path / "models.db")

    def objects(conn):
        return sorted(conn.execute("SELECT type, name, tbl_name FROM sqlite_master").fetchall())

    assert objects(from_models) == objects(from_sql)
    assert {name for kind, name, _ in objects(from_sql) if kind == "table"} == set(TABLES)
    for table in TABLES:
        assert describe_table(from_models, table) == describe_table(from_sql, table), table


def test_models_give_the_same_mapping_as_the_schema_file():
    config = seed_preset_config()
    conn = sqlite3.connect(":memory:")
    conn.executescript(seed_schema_sql())
    assert reflect_mapping_from_models(Base.metadata, config) == reflect_mapping(conn, config)


def test_sample_database_counts_and_determinism(tmp_path: Path):
    counts = build_sample_database(tmp_path / "a.db", conversations=40, seed=1)
    assert list(counts) == list(TABLES)
    assert counts["conversations"] == 40
    assert counts["documents"] == 10
    assert 2 * 40 <= counts["messages"] <= 12 * 40
    assert 2 * 10 <= counts["document_chunks"] <= 6 * 10
    assert 0 < counts["agent_interactions"] <= 3 * 40
    assert 0 < counts["multimodal_content"] <= 40
    assert build_sample_database(tmp_path / "b.db", conversations=40, seed=1) == counts
    a, b = sqlite3.connect(tmp_path / "a.db"), sqlite3.connect(tmp_path / "b.db")
    for table in TABLES:
        assert a.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() == b.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    other = sqlite3.connect(tmp_path / "c.db")
    build_sample_database(tmp_path / "c.db", conversations=40, seed=2)
    assert other.execute("SELECT id FROM conversations").fetchall() != a.execute("SELECT id FROM conversations").fetchall()
    with pytest.raises(FileExistsError):
        build_sample_database(tmp_path / "a.db")


def test_sample_data_exercises_the_preset(sample_db: Path):
    """Unicode, NULLs that take preset defaults, zones, BLOBs and vectors all occur."""
    conn = sqlite3.connect(sample_db)

    def one(sql: str, *params):
        return conn.execute(sql, params).fetchone()[0]

    assert one("SELECT count(*) FROM conversations WHERE title IS NULL") > 0
    assert one("SELECT count(*) FROM messages WHERE tool_calls IS NULL") > 0
    assert one("SELECT count(*) FROM messages WHERE tool_calls IS NOT NULL") > 0
    assert one("SELECT count(*) FROM messages WHERE content GLOB '*[^ -~]*'") > 0  # non-ASCII text
    assert one("SELECT count(*) FROM conversations WHERE updated_at LIKE '%Z' OR updated_at LIKE '%+__:__'") > 0
    assert one("SELECT count(*) FROM document_chunks WHERE length(embedding) = 4 * ?", EMBEDDING_DIM) > 0
    assert one("SELECT count(*) FROM multimodal_content WHERE typeof(data) = 'blob'") > 0
    assert one("SELECT typeof(created_at) FROM multimodal_content LIMIT 1") == "integer"
    assert one("PRAGMA journal_mode") == "wal"


def test_every_sample_row_converts_with_the_preset(sample_db: Path):
    conn = sqlite3.connect(sample_db)
    mapping = reflect_mapping(conn, seed_preset_config())
    assert sorted(mapping.tables) == sorted(TABLES)
    assert mapping.skipped == {}
    converted = 0
    for table_mapping in mapping.tables.values():
        for row in rows_of(conn, table_mapping.select_sql()):
            obj = table_mapping.to_object(row)  # raises ConversionError on any bad value
            converted += 1
            if table_mapping.table == "conversations" and row["title"] is None:
                assert obj.properties["title"] == "Untitled Conversation"
            if table_mapping.table == "document_chunks" and row["embedding"] is not None:
                assert obj.vector == decode_vector(row["embedding"])
                assert len(obj.vector) == EMBEDDING_DIM
    assert converted == sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)


def test_embedding_is_deterministic_normalised_and_topical():
    vector = embed_text("The telescope showed Saturn's rings")
    assert vector == embed_text("the TELESCOPE showed saturn's rings")
    assert len(vector) == EMBEDDING_DIM
    assert sum(v * v for v in vector) == pytest.approx(1.0)
    assert embed_text("") == [1.0] + [0.0] * (EMBEDDING_DIM - 1)
    query = embed_text("telescope planets orbit")
    near = embed_text("we pointed the telescope at the planets and watched their orbit")
    far = embed_text("simmer the garlic and onion in butter")
    assert cosine_similarity(query, near) > cosine_similarity(query, far)


@pytest.mark.parametrize("mode", ["orm", "raw"])
def test_traffic_is_steady_and_every_write_is_captured(sample_db: Path, mode: str):
    conn = sqlite3.connect(sample_db, isolation_level=None)
    report = install(conn)
    assert sorted(report.installed) == sorted(TABLES)

    stats = run_traffic(sample_db, rate=50, duration=2.0, seed=7, mode=mode)

    assert stats.failures == 0, stats.errors
    assert 60 <= stats.writes <= 101  # 50/s for 2 s, with room for a loaded CI machine
    assert 1.9 <= stats.elapsed_s <= 3.0
    for op in ("insert_message", "insert_conversation", "edit_message", "toggle_conversation", "delete_message",
               "delete_conversation", "change_message_id"):
        assert stats.by_op[op] > 0, (op, stats.by_op)
    outbox = read_outbox(conn, 0, 1_000_000)
    captured = {(row.table, row.key) for row in outbox}
    missing = stats.changed_keys - captured
    assert not missing, sorted(missing)[:10]
    if mode == "orm":
        assert all(row.ctx and row.ctx.get("origin") == "examples.chat_app.traffic" for row in outbox)
        assert {row.ctx["op"] for row in outbox} <= set(stats.by_op)
    else:
        assert all(row.ctx is None for row in outbox)
    # What the traffic wrote still converts under the preset.
    mapping = reflect_mapping(conn, seed_preset_config())
    for table_mapping in mapping.tables.values():
        for row in rows_of(conn, table_mapping.select_sql()):
            table_mapping.to_object(row)


def test_traffic_stops_when_asked(sample_db: Path):
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    stats = run_traffic(sample_db, rate=20, duration=30, seed=0, mode="raw", stop=stop)
    assert time.monotonic() - started < 2.0
    assert 1 <= stats.writes <= 12


def test_traffic_rejects_bad_arguments(tmp_path: Path, sample_db: Path):
    with pytest.raises(FileNotFoundError, match="examples.chat_app.seed"):
        run_traffic(tmp_path / "missing.db", rate=10, duration=1)
    with pytest.raises(ValueError, match="rate"):
        run_traffic(sample_db, rate=0, duration=1)
    with pytest.raises(ValueError, match="mode"):
        run_traffic(sample_db, rate=10, duration=1, mode="bulk")  # type: ignore[arg-type]


def test_command_lines(tmp_path: Path):
    db = tmp_path / "cli.db"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=120)

    seeded = run("examples.chat_app.seed", "--db", str(db), "--conversations", "12")
    assert seeded.returncode == 0, seeded.stderr
    assert json.loads(seeded.stdout)["rows"]["conversations"] == 12
    again = run("examples.chat_app.seed", "--db", str(db))
    assert again.returncode == 2 and "already exists" in again.stderr
    traffic = run("examples.chat_app.traffic", "--db", str(db), "--rate", "40", "--duration", "0.5", "--mode", "raw")
    assert traffic.returncode == 0, traffic.stderr
    report = json.loads(traffic.stdout)
    assert report["mode"] == "raw" and report["writes"] > 0 and report["failures"] == 0


@pytest.mark.integration
def test_chunks_are_searchable_by_text_in_weaviate(sample_db: Path, weaviate_client, collection_prefix: str):
    """The demo's promise: a near-vector query for a phrase finds chunks on that topic."""
    from weaviate.classes.data import DataObject

    conn = sqlite3.connect(sample_db)
    mapping = reflect_mapping(conn, seed_preset_config())
    ensure_collections(weaviate_client, mapping, name_prefix=collection_prefix)
    topics = {row[0]: json.loads(row[1])["topic"] for row in conn.execute("SELECT id, extra_data FROM documents")}
    topic_of_chunk = {}
    for table in ("documents", "document_chunks"):
        table_mapping = mapping.table(table)
        objects = []
        for row in rows_of(conn, table_mapping.select_sql()):
            obj = table_mapping.to_object(row)
            if table == "document_chunks":
                topic_of_chunk[str(obj.uuid)] = topics[row["document_id"]]
            objects.append(DataObject(properties=obj.properties, uuid=obj.uuid, vector=obj.vector,
                                      references=obj.references or None))
        result = weaviate_client.collections.use(collection_prefix + table_mapping.collection).data.insert_many(objects)
        assert not result.errors, result.errors

    chunks = weaviate_client.collections.use(collection_prefix + "DocumentChunk")
    assert len(chunks) == conn.execute("SELECT count(*) FROM document_chunks").fetchone()[0]
    checked = 0
    for topic in sorted(set(topics.values())):
        query = " ".join(TOPICS[topic][:6])
        on_topic = sum(1 for t in topic_of_chunk.values() if t == topic)
        hits = chunks.query.near_vector(embed_text(query), limit=min(3, on_topic)).objects
        assert hits and all(topic_of_chunk[str(hit.uuid)] == topic for hit in hits), (
            topic, [topic_of_chunk[str(h.uuid)] for h in hits])
        checked += 1
    assert checked >= 3
