"""Install / uninstall / status, schema drift detection and lossless repair, outbox helpers."""

from __future__ import annotations

import sqlite3

import pytest

from sqlite_to_weaviate.capture import (
    TRIGGER_VERSION,
    CaptureError,
    detect_drift,
    install,
    repair_drift,
    schema_change,
    schema_hash,
    status,
    uninstall,
)
from sqlite_to_weaviate.store.lanes import (
    BULK, LaneError, enqueue_all_keys, enqueue_keys, outbox_depth, prune_outbox, read, read_outbox,
)
from sqlite_to_weaviate.store.state import get_state, set_state
from sqlite_to_weaviate.store.txn import TransactionError
from tests.support.capture_db import changes, connect, last_seq, make_db, resyncs

DDL = """
CREATE TABLE doc (id INTEGER PRIMARY KEY, title TEXT, body TEXT);
CREATE TABLE chunk (doc_id INT, n INT, txt TEXT, PRIMARY KEY (doc_id, n)) WITHOUT ROWID;
"""


def _schema_objects(conn):
    return conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name LIKE '\\_s2w\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()


def _seed(conn, n=5):
    conn.executemany("INSERT INTO doc VALUES (?, ?, ?)", [(i, f"t{i}", "b") for i in range(1, n + 1)])


def kinds(conn):
    return sorted((d.table, d.kind) for d in detect_drift(conn))


def test_install_is_idempotent(tmp_path):
    c = make_db(tmp_path, DDL)
    before = _schema_objects(c)
    report = install(c)
    assert report.installed == ("chunk", "doc") and report.resynced == ()
    assert _schema_objects(c) == before
    assert detect_drift(c) == []


def test_install_is_atomic(tmp_path):
    c = connect(tmp_path / "app.db")
    c.executescript(DDL + "CREATE TABLE nopk (x);")
    with pytest.raises(CaptureError, match="'missing' does not exist"):
        install(c, ["doc", "missing"])
    with pytest.raises(CaptureError, match="'nopk' has no declared PRIMARY KEY"):
        install(c, ["doc", "nopk"])
    assert _schema_objects(c) == []
    assert not c.in_transaction


def test_install_restores_isolation_level_and_refuses_open_transaction(tmp_path):
    c = sqlite3.connect(tmp_path / "app.db")
    c.executescript(DDL)
    install(c, ["doc"])
    assert c.isolation_level == ""
    c.execute("INSERT INTO doc VALUES (1, 'a', 'b')")  # opens an implicit transaction
    with pytest.raises(TransactionError, match="open transaction"):
        install(c, ["doc"])
    c.commit()


def test_uninstall(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c, 2)
    uninstall(c, drop_outbox=False)
    c.execute("INSERT INTO doc VALUES (9, 'x', 'y')")  # app writes keep working
    assert outbox_depth(c) == 2
    assert [o[1] for o in _schema_objects(c)] == ["_s2w_bulk", "_s2w_objects", "_s2w_outbox", "_s2w_state"]  # + the registry
    uninstall(c)
    assert _schema_objects(c) == []
    assert status(c).installed is False


def test_status(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c, 3)
    st = status(c)
    assert st.installed and st.outbox_depth == 3 and (st.oldest_seq, st.newest_seq) == (1, 3)
    assert [(t.table, t.triggers_installed, t.version_current, t.schema_hash_matches) for t in st.tables] == [
        ("chunk", True, True, True), ("doc", True, True, True)]


def test_add_column_detected_and_repaired_with_resync(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c)
    old_hash = schema_hash(c, "doc")
    c.execute("ALTER TABLE doc ADD COLUMN lang TEXT")
    assert schema_hash(c, "doc") != old_hash
    assert kinds(c) == [("doc", "column_added")]
    s = last_seq(c)
    c.execute("UPDATE doc SET lang = 'fr' WHERE id = 1")  # blind trigger: looks like a no-op
    assert changes(c, s) == []
    report = repair_drift(c)
    assert report.reinstalled == ("doc",)
    assert changes(c, s) == []  # nothing of the resync in the live lane
    assert resyncs(c) == [("doc", "R", (i,)) for i in range(1, 6)]  # the missed change flows via R
    s = last_seq(c)
    c.execute("UPDATE doc SET lang = 'de' WHERE id = 2")
    assert changes(c, s) == [("doc", "U", (2,))]
    assert detect_drift(c) == []


def test_rename_column(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c, 2)
    c.execute("ALTER TABLE doc RENAME COLUMN body TO content")
    assert kinds(c) == [("doc", "column_renamed")]
    repair_drift(c)
    s = last_seq(c)
    c.execute("UPDATE doc SET content = 'new' WHERE id = 1")
    assert changes(c, s) == [("doc", "U", (1,))]


def test_drop_column_is_refused_by_sqlite_then_done_through_schema_change(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c, 3)
    with pytest.raises(sqlite3.OperationalError, match="_s2w_doc_au"):
        c.execute("ALTER TABLE doc DROP COLUMN body")
    s = last_seq(c)
    with schema_change(c, ["doc"]):
        c.execute("ALTER TABLE doc DROP COLUMN body")
    assert changes(c, s) == [] and resyncs(c) == [("doc", "R", (i,)) for i in range(1, 4)]
    assert detect_drift(c) == []


def test_drop_column_without_noop_filter(tmp_path):
    c = connect(tmp_path / "app.db")
    c.executescript(DDL)
    install(c, ["doc"], skip_noop_updates=False)
    _seed(c, 2)
    s = last_seq(c)
    c.execute("UPDATE doc SET title = title")  # no filter: recorded (harmless extra)
    assert changes(c, s) == [("doc", "U", (1,)), ("doc", "U", (2,))]
    c.execute("ALTER TABLE doc DROP COLUMN body")
    assert kinds(c) == [("doc", "column_dropped")]
    s = last_seq(c)
    repair_drift(c)
    assert changes(c, s) == [] and resyncs(c) == [("doc", "R", (1,)), ("doc", "R", (2,))]
    assert detect_drift(c) == []


def test_rename_table_follows_the_new_name(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c, 2)
    c.execute("ALTER TABLE doc RENAME TO document")
    s = last_seq(c)
    c.execute("INSERT INTO document VALUES (7, 'x', 'y')")
    assert changes(c, s) == [("doc", "I", (7,))]  # old triggers still fire, with the old name
    drift = [d for d in detect_drift(c) if d.kind == "table_renamed"]
    assert drift and drift[0].table == "doc" and drift[0].new_name == "document"
    s = last_seq(c)
    report = repair_drift(c)
    assert report.forgotten == ("doc",) and report.reinstalled == ("document",)
    assert changes(c, s) == [] and resyncs(c) == [("document", "R", (k,)) for k in (1, 2, 7)]
    s = last_seq(c)
    c.execute("UPDATE document SET title = 'z' WHERE id = 1")
    assert changes(c, s) == [("document", "U", (1,))]
    assert detect_drift(c) == []


def test_alembic_style_rebuild_is_detected_and_resynced(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c, 4)
    c.executescript(
        """
        BEGIN;
        CREATE TABLE _alembic_tmp_doc (id INTEGER PRIMARY KEY, title TEXT, body TEXT, extra INT);
        INSERT INTO _alembic_tmp_doc(id, title, body) SELECT id, title, body FROM doc;
        DROP TABLE doc;
        ALTER TABLE _alembic_tmp_doc RENAME TO doc;
        COMMIT;
        """
    )
    s = last_seq(c)
    c.execute("UPDATE doc SET title = 'lost?' WHERE id = 2")  # no triggers any more
    assert changes(c, s) == []
    assert ("doc", "triggers_missing") in kinds(c)
    assert not [t for t in status(c).tables if t.table == "doc"][0].triggers_installed
    repair_drift(c)
    assert changes(c, s) == [] and resyncs(c) == [("doc", "R", (i,)) for i in range(1, 5)]
    s = last_seq(c)
    c.execute("DELETE FROM doc WHERE id = 3")
    assert changes(c, s) == [("doc", "D", (3,))]


def test_drop_table(tmp_path):
    c = make_db(tmp_path, DDL)
    c.execute("DROP TABLE chunk")
    assert kinds(c) == [("chunk", "table_missing")]
    report = repair_drift(c)
    assert report.forgotten == ("chunk",) and report.reinstalled == ()
    assert detect_drift(c) == []


def test_trigger_version_upgrade_and_new_unique_index(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c, 1)
    c.execute("UPDATE _s2w_capture SET trigger_version = ? WHERE tbl = 'doc'", (TRIGGER_VERSION - 1,))
    c.execute("CREATE UNIQUE INDEX doc_title ON doc(title)")
    # The new index needs BEFORE triggers that are not there yet: reported as missing too.
    assert kinds(c) == [("doc", "schema_changed"), ("doc", "trigger_version_outdated"), ("doc", "triggers_missing")]
    repair_drift(c)
    c.execute("INSERT INTO doc VALUES (2, 'other', 'b')")
    s = last_seq(c)
    c.execute("INSERT OR REPLACE INTO doc VALUES (3, 't1', 'b')")  # removes doc 1 via the new index
    assert ("doc", "D", (1,)) in changes(c, s)


def test_enqueue_keys_and_keyset_pagination_go_to_the_bulk_lane(tmp_path):
    c = make_db(tmp_path, DDL)
    c.executemany("INSERT INTO chunk VALUES (?, ?, 'x')", [(d, n) for d in (1, 2) for n in (1, 2, 3)])
    live_before = last_seq(c)
    pk = ("doc_id", "n")
    last = enqueue_all_keys(c, "chunk", pk, limit=4)
    assert last == (2, 1)
    last = enqueue_all_keys(c, "chunk", pk, after_key=last, limit=4)
    assert last == (2, 3)
    assert enqueue_all_keys(c, "chunk", pk, after_key=last, limit=4) is None
    got = read(c, BULK, 0, 100)
    assert [r.key for r in got] == [(d, n) for d in (1, 2) for n in (1, 2, 3)]
    assert {r.op for r in got} == {"R"}
    assert last_seq(c) == live_before  # nothing of it in the live lane
    s = got[-1].seq
    assert enqueue_keys(c, "chunk", [(9, 9)], width=2, op="D", ctx={"origin": "verify"}) == 1
    (row,) = read(c, BULK, s, 10)
    assert (row.table, row.op, row.key, row.ctx) == ("chunk", "D", (9, 9), {"origin": "verify"})
    with pytest.raises(LaneError, match="2-column key"):
        enqueue_keys(c, "chunk", [(1,)], width=2)


def test_prune_and_depth_and_state(tmp_path):
    c = make_db(tmp_path, DDL)
    _seed(c, 5)
    assert outbox_depth(c, 2) == 3
    assert prune_outbox(c, 2) == 2
    assert outbox_depth(c) == 3
    assert get_state(c, "relay.checkpoint") is None
    set_state(c, "relay.checkpoint", "2")
    set_state(c, "relay.checkpoint", "3")
    assert get_state(c, "relay.checkpoint") == "3"
    assert get_state(c, "nope", "d") == "d"
