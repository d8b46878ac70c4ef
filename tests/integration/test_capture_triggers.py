"""Capture triggers on real SQLite files: every write path, edge value and rollback case."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import threading
import time

import pytest

from sqlite_to_weaviate.capture import CaptureError, install
from sqlite_to_weaviate.store.lanes import prune_outbox, read_outbox
from tests.support.capture_db import changes, connect, last_seq, make_db

BASIC = "CREATE TABLE t (id INTEGER PRIMARY KEY, v, s TEXT, b BLOB);"


def test_insert_update_delete(tmp_path):
    c = make_db(tmp_path, BASIC)
    c.execute("INSERT INTO t VALUES (1, 'a', 'x', NULL)")
    c.execute("UPDATE t SET v = 'b' WHERE id = 1")
    c.execute("DELETE FROM t WHERE id = 1")
    assert changes(c) == [("t", "I", (1,)), ("t", "U", (1,)), ("t", "D", (1,))]


@pytest.mark.parametrize(
    "value",
    [2**63 - 1, -(2**63), 2**53 + 1, 0.1, 1e308, -0.0, float("inf"), float("-inf"), 5e-324,
     b"\x00\xff", "é\x00x", "", None],
)
def test_edge_values_in_every_column_never_fail_the_write(tmp_path, value):
    c = make_db(tmp_path, BASIC)
    c.execute("INSERT INTO t VALUES (1, ?, ?, ?)", (value, value, value))
    c.execute("UPDATE t SET v = 'changed' WHERE id = 1")
    assert changes(c) == [("t", "I", (1,)), ("t", "U", (1,))]


def test_nan_and_invalid_utf8(tmp_path):
    c = make_db(tmp_path, BASIC)
    c.execute("INSERT INTO t VALUES (1, ?, 'x', NULL)", (math.nan,))  # SQLite stores NaN as NULL
    c.execute("INSERT INTO t VALUES (2, CAST(x'fffe0041' AS TEXT), CAST(x'c3' AS TEXT), NULL)")
    assert changes(c) == [("t", "I", (1,)), ("t", "I", (2,))]


def test_invalid_utf8_text_key_is_recorded_byte_exact(tmp_path):
    c = make_db(tmp_path, "CREATE TABLE k (id TEXT PRIMARY KEY, v);")
    c.execute("INSERT INTO k VALUES (CAST(x'c328' AS TEXT), 1)")
    assert c.execute("SELECT typeof(k1), hex(k1), op FROM _s2w_outbox").fetchall() == [("text", "C328", "I")]


def test_int64_blob_and_text_keys_keep_their_type(tmp_path):
    c = make_db(tmp_path, "CREATE TABLE k (a, b, PRIMARY KEY (a, b)) WITHOUT ROWID;")
    keys = [(2**63 - 1, b"\x00"), (-(2**63), "t\x00ext"), (2**53 + 1, 1.5), ("é", b"")]
    c.executemany("INSERT INTO k VALUES (?, ?)", keys)
    got = [r.key for r in read_outbox(c, 0, 100)]
    assert got == keys
    assert [tuple(type(v) for v in k) for k in got] == [tuple(type(v) for v in k) for k in keys]


def test_null_transitions_and_type_changes_are_captured(tmp_path):
    c = make_db(tmp_path, BASIC)
    c.execute("INSERT INTO t VALUES (1, NULL, NULL, NULL)")
    s = last_seq(c)
    c.execute("UPDATE t SET v = 0")  # NULL -> value
    c.execute("UPDATE t SET v = NULL")  # value -> NULL
    c.execute("UPDATE t SET v = 1")
    c.execute("UPDATE t SET v = 1.0")  # same numeric value, different storage class
    c.execute("UPDATE t SET s = 'a'")
    c.execute("UPDATE t SET s = 'A'")
    assert [op for _, op, _ in changes(c, s)] == ["U"] * 6


def test_case_change_in_nocase_column_is_captured(tmp_path):
    c = make_db(tmp_path, "CREATE TABLE n (id INTEGER PRIMARY KEY, s TEXT COLLATE NOCASE);")
    c.execute("INSERT INTO n VALUES (1, 'abc')")
    s = last_seq(c)
    c.execute("UPDATE n SET s = 'ABC'")
    assert changes(c, s) == [("n", "U", (1,))]


def test_noop_update_captures_nothing(tmp_path):
    c = make_db(tmp_path, BASIC)
    c.execute("INSERT INTO t VALUES (1, 'a', 'x', x'00')")
    s = last_seq(c)
    c.execute("UPDATE t SET v = v, s = 'x', b = x'00'")
    c.execute("UPDATE t SET v = 'a' WHERE id = 1")
    assert changes(c, s) == []


@pytest.mark.parametrize(
    "ddl,insert,update,old,new",
    [
        ("CREATE TABLE p (id INTEGER PRIMARY KEY, v);", "INSERT INTO p VALUES (1, 'x')",
         "UPDATE p SET id = 2", (1,), (2,)),
        ("CREATE TABLE p (a TEXT, b INT, v, PRIMARY KEY (a, b));", "INSERT INTO p VALUES ('k', 1, 'x')",
         "UPDATE p SET b = 2", ("k", 1), ("k", 2)),
        ("CREATE TABLE p (a TEXT PRIMARY KEY, v) WITHOUT ROWID;", "INSERT INTO p VALUES ('k', 'x')",
         "UPDATE p SET a = 'K'", ("k",), ("K",)),
    ],
)
def test_pk_change_is_delete_old_plus_upsert_new(tmp_path, ddl, insert, update, old, new):
    c = make_db(tmp_path, ddl)
    c.execute(insert)
    s = last_seq(c)
    c.execute(update)
    assert changes(c, s) == [("p", "D", old), ("p", "U", new)]


def test_delete_then_reinsert_same_key(tmp_path):
    c = make_db(tmp_path, BASIC)
    c.execute("INSERT INTO t VALUES (1, 'a', NULL, NULL)")
    c.execute("DELETE FROM t")
    c.execute("INSERT INTO t VALUES (1, 'b', NULL, NULL)")
    assert changes(c) == [("t", "I", (1,)), ("t", "D", (1,)), ("t", "I", (1,))]


def test_seq_never_repeats_after_pruning_everything(tmp_path):
    c = make_db(tmp_path, BASIC)
    c.executemany("INSERT INTO t(id) VALUES (?)", [(i,) for i in range(5)])
    top = last_seq(c)
    prune_outbox(c, top)
    assert c.execute("SELECT count(*) FROM _s2w_outbox").fetchone()[0] == 0
    c.execute("INSERT INTO t(id) VALUES (99)")
    assert [r.seq for r in read_outbox(c, 0, 10)] == [top + 1]


UNIQ = "CREATE TABLE u (id INTEGER PRIMARY KEY, sku TEXT UNIQUE, v);"


def test_insert_or_replace_same_key(tmp_path):
    c = make_db(tmp_path, UNIQ)
    c.execute("INSERT INTO u VALUES (1, 'a', 1)")
    s = last_seq(c)
    c.execute("INSERT OR REPLACE INTO u VALUES (1, 'a', 2)")
    assert ("u", "I", (1,)) in changes(c, s)


@pytest.mark.parametrize("recursive", [False, True])
def test_insert_or_replace_through_secondary_unique_captures_the_deleted_row(tmp_path, recursive):
    c = make_db(tmp_path, UNIQ, recursive_triggers=recursive)
    c.execute("INSERT INTO u VALUES (1, 'a', 1)")
    s = last_seq(c)
    c.execute("INSERT OR REPLACE INTO u VALUES (2, 'a', 2)")  # deletes row 1
    got = changes(c, s)
    assert ("u", "D", (1,)) in got and ("u", "I", (2,)) in got
    assert c.execute("SELECT id FROM u").fetchall() == [(2,)]


def test_update_or_replace_collision(tmp_path):
    c = make_db(tmp_path, UNIQ)
    c.executemany("INSERT INTO u VALUES (?, ?, 0)", [(1, "a"), (2, "b"), (3, "c")])
    s = last_seq(c)
    c.execute("UPDATE OR REPLACE u SET sku = 'a' WHERE id = 2")  # deletes row 1
    c.execute("UPDATE OR REPLACE u SET id = 3 WHERE id = 2")  # deletes row 3, moves 2 -> 3
    got = changes(c, s)
    assert ("u", "D", (1,)) in got and ("u", "U", (2,)) in got
    assert ("u", "D", (2,)) in got and ("u", "U", (3,)) in got
    assert c.execute("SELECT id, sku FROM u").fetchall() == [(3, "a")]


def test_unique_nocase_index_conflict(tmp_path):
    c = make_db(tmp_path, "CREATE TABLE w (id INTEGER PRIMARY KEY, e TEXT); CREATE UNIQUE INDEX we ON w(e COLLATE NOCASE);")
    c.execute("INSERT INTO w VALUES (1, 'A@x')")
    s = last_seq(c)
    c.execute("INSERT OR REPLACE INTO w VALUES (2, 'a@X')")
    assert ("w", "D", (1,)) in changes(c, s)


@pytest.mark.parametrize("ddl, old, new, newer", [
    ("CREATE TABLE n (k TEXT COLLATE NOCASE PRIMARY KEY, v)", "KEY", "Key", "kEY"),
    ("CREATE TABLE n (loc TEXT, k TEXT COLLATE NOCASE, v, PRIMARY KEY (loc, k)) WITHOUT ROWID", "KEY", "Key", "kEY"),
    ("CREATE TABLE n (k TEXT COLLATE RTRIM PRIMARY KEY, v) WITHOUT ROWID", "KEY  ", "KEY", "KEY "),
])
@pytest.mark.parametrize("recursive", [False, True])
def test_or_replace_on_a_primary_key_that_is_not_binary_captures_the_replaced_key(tmp_path, ddl, old, new, newer,
                                                                                   recursive):
    """Under NOCASE/RTRIM, 'Key' replaces 'KEY': a different key to us, and no delete trigger fires."""
    c = make_db(tmp_path, ddl + ";", recursive_triggers=recursive)
    composite = "loc" in ddl
    row = (lambda k: ("en", k, 1)) if composite else (lambda k: (k, 1))
    key = (lambda k: ("en", k)) if composite else (lambda k: (k,))
    marks = ", ".join("?" * len(row(old)))
    c.execute(f"INSERT INTO n VALUES ({marks})", row(old))
    s = last_seq(c)
    c.execute(f"INSERT OR REPLACE INTO n VALUES ({marks})", row(new))
    got = changes(c, s)
    assert ("n", "D", key(old)) in got and ("n", "I", key(new)) in got
    assert [tuple(r) for r in c.execute("SELECT * FROM n")] == [row(new)]
    c.execute(f"INSERT INTO n VALUES ({marks})", row("other"))
    s = last_seq(c)
    c.execute("UPDATE OR REPLACE n SET k = ? WHERE k = 'other'", (newer,))  # replaces the row of `new`
    got = changes(c, s)
    assert ("n", "D", key(new)) in got and ("n", "U", key(newer)) in got
    assert [tuple(r) for r in c.execute("SELECT * FROM n")] == [row(newer)]


def test_upsert_do_update_do_nothing_or_ignore(tmp_path):
    c = make_db(tmp_path, UNIQ)
    c.execute("INSERT INTO u VALUES (1, 'a', 1)")
    s = last_seq(c)
    c.execute("INSERT INTO u VALUES (1, 'a', 5) ON CONFLICT(id) DO UPDATE SET v = excluded.v")
    assert ("u", "U", (1,)) in changes(c, s)
    s = last_seq(c)
    c.execute("INSERT INTO u VALUES (7, 'a', 9) ON CONFLICT(sku) DO UPDATE SET v = excluded.v")
    assert ("u", "U", (1,)) in changes(c, s)
    s = last_seq(c)
    c.execute("INSERT INTO u VALUES (1, 'a', 9) ON CONFLICT DO NOTHING")
    c.execute("INSERT OR IGNORE INTO u VALUES (1, 'z', 9)")
    # Nothing changed; any rows written are harmless re-syncs of the existing key.
    assert {k for _, _, k in changes(c, s)} <= {(1,)}
    assert c.execute("SELECT * FROM u").fetchall() == [(1, "a", 9)]


def test_outer_conflict_clauses_never_drop_outbox_rows(tmp_path):
    c = make_db(tmp_path, UNIQ)
    c.executemany("INSERT INTO u VALUES (?, ?, 0)", [(i, f"s{i}") for i in range(3)])
    s = last_seq(c)
    c.executemany("INSERT OR IGNORE INTO u VALUES (?, ?, 1)", [(i, f"n{i}") for i in range(2, 6)])
    c.executemany("INSERT OR REPLACE INTO u VALUES (?, ?, 2)", [(i, f"r{i}") for i in range(4, 8)])
    c.execute("UPDATE OR IGNORE u SET v = 3")
    c.execute("UPDATE OR REPLACE u SET v = 4")
    got = changes(c, s)
    assert [k for _, op, k in got if op == "I"] == [(3,), (4,), (5,), (4,), (5,), (6,), (7,)]
    ids = [r[0] for r in c.execute("SELECT id FROM u ORDER BY id")]
    assert [k[0] for _, op, k in got if op == "U"] == ids * 2
    seqs = [r.seq for r in read_outbox(c, s, 1000)]
    assert seqs == sorted(set(seqs))


def test_fk_cascades(tmp_path):
    ddl = """
    CREATE TABLE parent (id INTEGER PRIMARY KEY, code TEXT UNIQUE);
    CREATE TABLE child_c (id INTEGER PRIMARY KEY, pid INT REFERENCES parent(id) ON DELETE CASCADE);
    CREATE TABLE child_n (id INTEGER PRIMARY KEY, pid INT REFERENCES parent(id) ON DELETE SET NULL);
    CREATE TABLE child_u (id INTEGER PRIMARY KEY, pcode TEXT REFERENCES parent(code) ON UPDATE CASCADE);
    """
    c = make_db(tmp_path, ddl, foreign_keys=True)
    c.execute("INSERT INTO parent VALUES (1, 'p1'), (2, 'p2')")
    c.execute("INSERT INTO child_c VALUES (10, 1)")
    c.execute("INSERT INTO child_n VALUES (20, 1)")
    c.execute("INSERT INTO child_u VALUES (30, 'p2')")
    s = last_seq(c)
    c.execute("UPDATE parent SET code = 'P2' WHERE id = 2")
    c.execute("DELETE FROM parent WHERE id = 1")
    got = changes(c, s)
    assert ("child_u", "U", (30,)) in got
    assert ("child_c", "D", (10,)) in got
    assert ("child_n", "U", (20,)) in got
    assert ("parent", "D", (1,)) in got


def test_rollback_savepoint_and_failed_statement_leave_nothing(tmp_path):
    c = make_db(tmp_path, UNIQ)
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO u VALUES (1, 'a', 1)")
    c.execute("ROLLBACK")
    assert changes(c) == []
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO u VALUES (1, 'a', 1)")
    c.execute("SAVEPOINT sp")
    c.execute("INSERT INTO u VALUES (2, 'b', 1)")
    c.execute("UPDATE u SET v = 9")
    c.execute("ROLLBACK TO sp")
    c.execute("RELEASE sp")
    c.execute("COMMIT")
    assert changes(c) == [("u", "I", (1,))]
    s = last_seq(c)
    with pytest.raises(sqlite3.IntegrityError):  # row 3 inserted, then the dup of 'a' aborts
        c.execute("INSERT INTO u VALUES (3, 'c', 1), (4, 'a', 1)")
    assert changes(c, s) == []
    assert c.execute("SELECT count(*) FROM u").fetchone()[0] == 1


def test_quoted_reserved_unicode_names_and_generated_columns(tmp_path):
    ddl = """
    CREATE TABLE "order" ("select" INTEGER PRIMARY KEY, "from" TEXT);
    CREATE TABLE "we""ird tb" ("k""ey" TEXT PRIMARY KEY, "va lue" INT) WITHOUT ROWID;
    CREATE TABLE données (clé TEXT, n° INT, prix REAL, ttc REAL GENERATED ALWAYS AS (prix * 1.2) VIRTUAL,
                          st REAL GENERATED ALWAYS AS (prix * 2) STORED, PRIMARY KEY (clé, n°));
    """
    c = make_db(tmp_path, ddl)
    c.execute('INSERT INTO "order" VALUES (1, \'x\')')
    c.execute('INSERT INTO "we""ird tb" VALUES (\'a"b\', 1)')
    c.execute("INSERT INTO données(clé, n°, prix) VALUES ('é', 1, 10.0)")
    s = last_seq(c)
    c.execute('UPDATE "order" SET "from" = \'y\'')
    c.execute('UPDATE "we""ird tb" SET "va lue" = 2')
    c.execute("UPDATE données SET prix = 11.0")
    c.execute("UPDATE données SET prix = 11.0")  # no-op although generated values are recomputed
    assert changes(c, s) == [("order", "U", (1,)), ('we"ird tb', "U", ('a"b',)), ("données", "U", ("é", 1))]


def test_int_primary_key_not_rowid_alias_and_without_rowid(tmp_path):
    c = make_db(tmp_path, "CREATE TABLE a (id INT PRIMARY KEY, v); CREATE TABLE b (id TEXT PRIMARY KEY, v) WITHOUT ROWID;")
    c.execute("INSERT INTO a VALUES (5, 1)")
    c.execute("INSERT INTO b VALUES ('k', 1)")
    assert changes(c) == [("a", "I", (5,)), ("b", "I", ("k",))]


def test_table_without_primary_key_is_refused(tmp_path):
    c = connect(tmp_path / "app.db")
    c.execute("CREATE TABLE logs (msg TEXT)")
    with pytest.raises(CaptureError, match="no declared PRIMARY KEY: its rowids are unstable"):
        install(c, ["logs"])
    report = install(c)
    assert report.skipped and report.skipped[0][0] == "logs"


def test_more_than_eight_key_columns_is_refused(tmp_path):
    c = connect(tmp_path / "app.db")
    cols = ", ".join(f"c{i}" for i in range(9))
    c.execute(f"CREATE TABLE wide ({cols}, PRIMARY KEY ({cols}))")
    with pytest.raises(CaptureError, match="at most 8 key columns"):
        install(c, ["wide"])


def _child_writer(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t(id, v) VALUES (?, 'p')", [(i,) for i in range(100, 110)])
    conn.execute("COMMIT")
    conn.execute("DELETE FROM t WHERE id = 100")
    conn.close()


def test_second_process_without_sqlalchemy_is_captured(tmp_path):
    c = make_db(tmp_path, BASIC)
    p = multiprocessing.get_context("spawn").Process(target=_child_writer, args=(str(tmp_path / "app.db"),))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    got = changes(c)
    assert [k[0] for _, op, k in got if op == "I"] == list(range(100, 110))
    assert got[-1] == ("t", "D", (100,))


def test_blocked_writer_succeeds_with_begin_immediate_and_busy_timeout(tmp_path):
    c = make_db(tmp_path, BASIC)
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO t(id) VALUES (1)")
    result = {}

    def blocked():
        other = connect(tmp_path / "app.db")
        other.execute("PRAGMA busy_timeout=10000")
        other.execute("BEGIN IMMEDIATE")  # waits for c's write lock
        other.execute("INSERT INTO t(id) VALUES (2)")
        other.execute("COMMIT")
        other.close()
        result["ok"] = True

    th = threading.Thread(target=blocked)
    th.start()
    time.sleep(0.3)
    c.execute("COMMIT")
    th.join(20)
    assert result == {"ok": True}
    assert changes(c) == [("t", "I", (1,)), ("t", "I", (2,))]


def test_without_before_triggers_the_replace_orphan_would_be_lost(tmp_path):
    """Control for the OR REPLACE decision: SQLite itself fires no delete trigger here."""
    c = make_db(tmp_path, UNIQ)
    c.execute("DROP TRIGGER _s2w_u_bi")
    c.execute("INSERT INTO u VALUES (1, 'a', 1)")
    s = last_seq(c)
    c.execute("INSERT OR REPLACE INTO u VALUES (2, 'a', 2)")
    assert changes(c, s) == [("u", "I", (2,))]  # row 1 vanished without a trace


def test_expression_unique_index_is_reported(tmp_path):
    c = connect(tmp_path / "app.db")
    c.executescript("CREATE TABLE e (id INTEGER PRIMARY KEY, s TEXT); CREATE UNIQUE INDEX e_lower ON e(lower(s));")
    report = install(c)
    assert report.installed == ("e",)
    assert len(report.warnings) == 1 and "e_lower" in report.warnings[0]
    c.execute("INSERT INTO e VALUES (1, 'A')")  # the triggers still work for everything else
    assert changes(c) == [("e", "I", (1,))]
