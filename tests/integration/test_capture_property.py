"""Property test: random write sequences from several connections never lose a change.

For every transaction: the keys whose row changed (compared type-exactly) are a subset of the
keys the outbox gained, and a rolled-back transaction adds no outbox row. At the end, replaying
the outbox the way the relay does (for each key, in seq order, copy the current row or delete
it) onto a copy of the pre-state reproduces the final state of every key.
"""

from __future__ import annotations

import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlite_to_weaviate.capture import install
from sqlite_to_weaviate.store.lanes import read_outbox
from tests.support.capture_db import connect

DDL = """
CREATE TABLE kv (id INTEGER PRIMARY KEY, v, u TEXT UNIQUE);
CREATE TABLE ck (a TEXT, b INT, v, PRIMARY KEY (a, b)) WITHOUT ROWID;
"""

values = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
                   st.text(max_size=3), st.binary(max_size=3), st.sampled_from([1, 1.0, "1", b"1"]))
ids = st.integers(0, 6)
uniq = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"]))
ck_a = st.sampled_from(["x", "y", "é"])
ck_b = st.integers(0, 2)

statements = st.one_of(
    st.tuples(st.just("INSERT OR IGNORE INTO kv VALUES (?, ?, ?)"), st.tuples(ids, values, uniq)),
    st.tuples(st.just("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)"), st.tuples(ids, values, uniq)),
    st.tuples(st.just("INSERT INTO kv VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET v = excluded.v"),
              st.tuples(ids, values, uniq)),
    st.tuples(st.just("UPDATE kv SET v = ? WHERE id = ?"), st.tuples(values, ids)),
    st.tuples(st.just("UPDATE OR REPLACE kv SET u = ? WHERE id = ?"), st.tuples(uniq, ids)),
    st.tuples(st.just("UPDATE OR IGNORE kv SET id = ? WHERE id = ?"), st.tuples(ids, ids)),
    st.tuples(st.just("UPDATE OR REPLACE kv SET id = ? WHERE id = ?"), st.tuples(ids, ids)),
    st.tuples(st.just("DELETE FROM kv WHERE id >= ?"), st.tuples(ids)),
    st.tuples(st.just("INSERT OR REPLACE INTO ck VALUES (?, ?, ?)"), st.tuples(ck_a, ck_b, values)),
    st.tuples(st.just("UPDATE OR REPLACE ck SET b = ? WHERE a = ? AND b = ?"),
              st.tuples(ck_b, ck_a, ck_b)),
    st.tuples(st.just("UPDATE ck SET v = ? WHERE a = ?"), st.tuples(values, ck_a)),
    st.tuples(st.just("DELETE FROM ck WHERE b = ?"), st.tuples(ck_b)),
)
transactions = st.lists(
    st.tuples(
        st.integers(0, 2),  # connection
        st.lists(st.tuples(statements, st.booleans()), min_size=1, max_size=5),  # (stmt, in savepoint)
        st.sampled_from(["commit", "commit", "rollback"]),
    ),
    min_size=1,
    max_size=12,
)


def _exact(v):
    return (type(v).__name__, v)


def _snapshot(conn: sqlite3.Connection) -> dict:
    snap = {}
    for r in conn.execute("SELECT id, v, u FROM kv"):
        snap[("kv", (r[0],))] = tuple(map(_exact, r))
    for r in conn.execute("SELECT a, b, v FROM ck"):
        snap[("ck", (r[0], r[1]))] = tuple(map(_exact, r))
    return snap


def _current(conn, table, key):
    if table == "kv":
        r = conn.execute("SELECT id, v, u FROM kv WHERE id = ?", key).fetchone()
    else:
        r = conn.execute("SELECT a, b, v FROM ck WHERE a = ? AND b = ?", key).fetchone()
    return None if r is None else tuple(map(_exact, r))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(txns=transactions, seed_rows=st.lists(st.tuples(ids, values, uniq), max_size=5))
def test_outbox_covers_every_change_and_replays_to_final_state(tmp_path_factory, txns, seed_rows):
    path = tmp_path_factory.mktemp("prop") / "app.db"
    conns = [connect(path, recursive_triggers=(i == 1)) for i in range(3)]
    c0 = conns[0]
    c0.executescript(DDL)
    c0.executemany("INSERT OR IGNORE INTO kv VALUES (?, ?, ?)", seed_rows)
    install(c0)
    pre = _snapshot(c0)
    seq = 0
    try:
        for conn_idx, stmts, end in txns:
            conn = conns[conn_idx]
            before = _snapshot(conn)
            conn.execute("BEGIN IMMEDIATE")
            for (sql, params), in_savepoint in stmts:
                if in_savepoint:
                    conn.execute("SAVEPOINT sp")
                try:
                    conn.execute(sql, params)
                except sqlite3.IntegrityError:
                    pass  # a plain UNIQUE/PK conflict aborts just that statement; the txn goes on
                if in_savepoint:
                    conn.execute("ROLLBACK TO sp")
                    conn.execute("RELEASE sp")
            conn.execute("COMMIT" if end == "commit" else "ROLLBACK")
            after = _snapshot(conn)
            new_rows = read_outbox(conn, seq, 10_000)
            if end == "rollback":
                assert new_rows == []
                assert after == before
            changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
            assert changed <= {(r.table, r.key) for r in new_rows}
            if new_rows:
                seq = new_rows[-1].seq
        # Replay like the relay: each outbox key takes its current state (missing = delete).
        shadow = dict(pre)
        for r in read_outbox(c0, 0, 100_000):
            row = _current(c0, r.table, r.key)
            if row is None:
                shadow.pop((r.table, r.key), None)
            else:
                shadow[(r.table, r.key)] = row
        assert shadow == _snapshot(c0)
    finally:
        for c in conns:
            c.close()
