"""verify against real SQLite, Redis, Weaviate and pipeline: every injected divergence, exactly.

Divergences are injected behind the pipeline's back (objects deleted, stray objects added,
properties and vectors altered in Weaviate, rows changed with the triggers dropped) and
verify must report exactly those uuids in exactly the right class; repair must fix them so
that a second verify is clean.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid

import pytest
from weaviate.classes.data import DataObject

from sqlite_to_weaviate.store.lanes import enqueue_all_keys
from sqlite_to_weaviate.mapping import encode_vector
from sqlite_to_weaviate.verify import (
    EXIT_CLEAN, EXIT_DIFFERENCES, EXIT_ERROR, EXIT_REPAIRED, VerifyError, verify, verify_or_error,
)

SCHEMA = """
CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE items (
    id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, active BOOLEAN,
    created_at TIMESTAMP, data BLOB, embedding BLOB, owner_id INTEGER
);
CREATE TABLE tags (owner TEXT, tag TEXT, weight REAL, PRIMARY KEY (owner, tag)) WITHOUT ROWID;
"""

MAPPING = """
[tables.items]
vector_column = "embedding"

[[tables.items.references]]
column = "owner_id"
property = "owner"
target = "owners"
"""

N_ITEMS = 80


def vec(seed: int) -> bytes:
    rng = random.Random(seed)
    return encode_vector([rng.uniform(-1, 1) for _ in range(8)])


def make_db(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO owners VALUES (?, ?)", [(i, f"owner {i}") for i in range(5)])
    conn.executemany(
        "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(i, f"item {i}", i * 3, i / 7, i % 2, f"2024-03-{1 + i % 28:02d}T10:{i % 60:02d}:00.123456789+02:00",
          bytes([i, 0, 255]), vec(i), i % 5) for i in range(N_ITEMS)],
    )
    conn.executemany("INSERT INTO tags VALUES (?, ?, ?)", [(f"o{i % 4}", f"t{i}", i / 3) for i in range(30)])
    return conn


def write_without_capture(conn: sqlite3.Connection, table: str, sql: str, params=()) -> None:
    """Change a row with the capture triggers dropped (then restore them): the pipeline never sees it."""
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name=?", (table,)).fetchall()
    assert triggers, "capture triggers expected"
    conn.execute("BEGIN IMMEDIATE")
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute(sql, params)
    for _, trigger_sql in triggers:
        conn.execute(trigger_sql)
    conn.execute("COMMIT")


@pytest.fixture
def synced(tmp_path, make_settings, pipeline_factory, weaviate_client):
    db = tmp_path / "app.db"
    conn = make_db(db)
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(MAPPING)
    settings = make_settings(db, mapping_file=mapping_file)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    for table in ("owners", "items", "tags"):  # historical rows: what backfill does
        enqueue_all_keys(conn, table, tuple(settings.load_mapping(conn).table(table).primary_key))
    pipeline.start_workers(1)
    pipeline.drain()
    mapping = settings.load_mapping(conn)
    return conn, settings, pipeline, mapping


def uuids(capped) -> set[str]:
    assert capped.total == len(capped.items)
    return {e.uuid for e in capped.items}


def test_clean_after_sync(synced):
    conn, settings, _, mapping = synced
    report = verify(settings, sample=1000)
    assert report.exit_code() == EXIT_CLEAN, report.render()
    items = report.tables["items"]
    assert (items.rows, items.objects, items.scanned_rows, items.scanned_objects) == (N_ITEMS,) * 4
    assert items.sampled == N_ITEMS  # every field of every row compared: dates, blobs, vectors, references
    assert report.tables["tags"].sampled == 30
    assert report.to_json()["clean"] is True


def test_finds_exactly_the_injected_divergences_and_repairs_them(synced, weaviate_client):
    conn, settings, pipeline, mapping = synced
    items_m, tags_m = mapping.table("items"), mapping.table("tags")
    items = weaviate_client.collections.use(items_m.collection)
    tags = weaviate_client.collections.use(tags_m.collection)
    uid = lambda tm, *key: str(tm.uuid_for_key(key))  # noqa: E731

    # missing: objects deleted in Weaviate
    missing = {uid(items_m, i) for i in (3, 41, 77)} | {uid(tags_m, "o1", "t5")}
    for u in missing:
        (items if u != uid(tags_m, "o1", "t5") else tags).data.delete_by_id(u)
    # extra: stray objects (a key that has no row, and a random uuid)
    extra = {uid(items_m, 5000), str(uuid.uuid4())}
    items.data.insert_many([DataObject(properties={"name": "stray", "s2wContentHash": "x"}, uuid=u) for u in extra])
    # stale: rows changed with capture bypassed
    write_without_capture(conn, "items", "UPDATE items SET qty = -1, name = 'changed' WHERE id = 12")
    write_without_capture(conn, "tags", "UPDATE tags SET weight = 99 WHERE owner = 'o2' AND tag = 't6'")
    stale = {uid(items_m, 12), uid(tags_m, "o2", "t6")}
    # field-level only (hash still matches): a property and a vector altered in Weaviate
    items.data.update(uuid=uid(items_m, 10), properties={"name": "tampered"})
    items.data.update(uuid=uid(items_m, 20), vector=[0.5] * 8)
    tampered = {uid(items_m, 10), uid(items_m, 20)}

    report = verify(settings, sample=1000)
    by_kind = lambda kind: set().union(*(uuids(getattr(t, kind)) for t in report.tables.values()))  # noqa: E731
    assert by_kind("missing") == missing, report.render()
    assert by_kind("extra") == extra
    assert by_kind("stale") == stale
    assert by_kind("sample_mismatches") == tampered
    assert by_kind("refused") == set() and report.unsettled == 0
    assert report.exit_code() == EXIT_DIFFERENCES
    stale_items = {e.uuid: e.detail["fields"] for e in report.tables["items"].stale.items}
    assert set(stale_items[uid(items_m, 12)]) == {"name", "qty", "s2wContentHash"}
    mismatch = {e.uuid: {d["field"] for d in e.detail} for e in report.tables["items"].sample_mismatches.items}
    assert mismatch == {uid(items_m, 10): {"name"}, uid(items_m, 20): {"vector"}}
    assert "DIFFERENCES FOUND" in report.render()

    # repair goes through the outbox: the relay and a worker apply it
    pipeline.start_relay_thread()
    repaired = verify(settings, sample=1000, repair=True)
    assert repaired.exit_code() == EXIT_REPAIRED, repaired.render()
    assert sum(t.repaired for t in repaired.tables.values()) == len(missing | extra | stale | tampered)
    assert sum(t.repair_deleted for t in repaired.tables.values()) == len(extra)
    ctxs = {r[0] for r in conn.execute("SELECT ctx FROM _s2w_bulk")}  # repairs use the bulk lane; pruned once applied
    assert ctxs <= {'{"origin": "verify --repair"}'}
    again = verify(settings, sample=1000)
    assert again.exit_code() == EXIT_CLEAN, again.render()


def test_refused_rows_are_differences_in_their_own_class(synced, weaviate_client):
    conn, settings, pipeline, mapping = synced
    conn.execute("UPDATE items SET qty = ? WHERE id = 7", (2**60,))  # cannot be an int property: dead letter
    pipeline.drain()
    report = verify(settings)
    items = report.tables["items"]
    assert uuids(items.refused) == {str(mapping.table("items").uuid_for_key((7,)))}
    assert items.missing.total == items.stale.total == 0
    assert report.refused == report.differences == 1 and not report.clean
    assert report.exit_code() == EXIT_DIFFERENCES, report.render()
    data = report.to_json()["tables"]["items"]
    assert data["refused"]["total"] == 1 and data["refused_reasons"]["reasons"][0]["column"] == "qty"
    assert data["refused_reasons"]["mapping_fix"] == '[tables.items.columns.qty]\ntype = "text"'
    accepted = verify(settings, allow_refused=True)
    assert accepted.exit_code() == EXIT_CLEAN and accepted.refused == 1 and not accepted.clean
    assert "accepted (--allow-refused)" in accepted.render() and "qty: 1 row(s) beyond ±2^53" in accepted.render()
    # --repair cannot write a row the mapping refuses: still exit 1, nothing enqueued for it
    pipeline.start_relay_thread()
    repaired = verify(settings, repair=True)
    assert repaired.exit_code() == EXIT_DIFFERENCES and repaired.tables["items"].repair_enqueued == 0


def test_no_false_differences_under_live_writes(synced):
    conn, settings, pipeline, mapping = synced
    pipeline.start_relay_thread()
    stop = threading.Event()
    writes = [0]

    def writer() -> None:
        c = sqlite3.connect(settings.sqlite_path, isolation_level=None, timeout=30)
        rng = random.Random(3)
        while not stop.is_set():
            i = rng.randrange(N_ITEMS + 40)
            c.execute("BEGIN IMMEDIATE")
            if rng.random() < 0.6:
                c.execute("INSERT OR REPLACE INTO items(id, name, qty, embedding, owner_id) VALUES (?, ?, ?, ?, ?)",
                          (i, f"live {rng.random()}", rng.randrange(1000), vec(rng.randrange(99)), i % 5))
            elif rng.random() < 0.5:
                c.execute("UPDATE tags SET weight = ? WHERE tag = ?", (rng.random(), f"t{i % 30}"))
            else:
                c.execute("DELETE FROM items WHERE id = ?", (i,))
            c.execute("COMMIT")
            writes[0] += 1
            time.sleep(0.002)
        c.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        reports = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            reports.append(verify(settings, sample=50))
    finally:
        stop.set()
        thread.join()
    assert writes[0] > 200
    for report in reports:
        assert report.differences == 0, report.render()
        assert report.unsettled == 0, report.render()
    assert any(t.rechecked for r in reports for t in r.tables.values()) or len(reports) > 1


def test_refuses_when_mapping_and_collections_disagree(synced, tmp_path):
    conn, settings, _, _ = synced
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(MAPPING + '\n[tables.items.columns.qty]\ntype = "text"\n')
    with pytest.raises(VerifyError, match=r"property 'qty' is int, the mapping says text"):
        verify(settings.replace(mapping_file=wrong))
    report = verify_or_error(settings.replace(collection_prefix=settings.collection_prefix + "Nope"))
    assert report.exit_code() == EXIT_ERROR and "does not exist" in report.error
    with pytest.raises(VerifyError, match="not mapped"):
        verify(settings, tables=["nope"])


def test_command_exit_codes_and_report_file(synced, weaviate_client, tmp_path):
    import json

    from click.testing import CliRunner

    from sqlite_to_weaviate.cli import main

    conn, settings, _, mapping = synced
    args = ["verify", "--sqlite-url", str(settings.sqlite_path), "--weaviate-url", settings.weaviate_url,
            "--redis-url", settings.redis_url, "--namespace", settings.namespace,
            "--mapping", str(settings.mapping_file), "--collection-prefix", settings.collection_prefix]
    out = tmp_path / "verify.json"
    result = CliRunner().invoke(main, args + ["--json", "--report", str(out), "--sample", "5"])
    assert result.exit_code == EXIT_CLEAN, result.output
    assert json.loads(out.read_text())["clean"] is True
    gone = mapping.table("owners").uuid_for_key((2,))
    weaviate_client.collections.use(mapping.table("owners").collection).data.delete_by_id(gone)
    result = CliRunner().invoke(main, args + ["--report", str(out), "--progress"])
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    assert "DIFFERENCES FOUND" in result.output
    assert json.loads(out.read_text())["tables"]["owners"]["missing"]["items"][0]["uuid"] == str(gone)
    result = CliRunner().invoke(main, args[:-1] + ["Missing", "--report", str(out)])
    assert result.exit_code == EXIT_ERROR and "does not exist" in result.output
    assert json.loads(out.read_text())["error"]


def test_pipeline_behind_is_unsettled_not_a_difference(synced):
    """Captured but not yet applied changes (relay stopped) are never reported as differences."""
    conn, settings, pipeline, mapping = synced
    conn.execute("UPDATE items SET name = 'captured, not applied' WHERE id = 30")
    conn.execute("DELETE FROM items WHERE id = 31")
    started = time.monotonic()
    report = verify(settings, recheck_timeout=3)
    assert time.monotonic() - started < 60
    assert report.differences == 0, report.render()
    items_m = mapping.table("items")
    assert uuids(report.tables["items"].unsettled) == {str(items_m.uuid_for_key((30,))), str(items_m.uuid_for_key((31,)))}
    assert report.exit_code() == EXIT_ERROR
    pipeline.drain()
    assert verify(settings).exit_code() == EXIT_CLEAN
