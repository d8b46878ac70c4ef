"""The durable re-send list, the payload's replace list and the write horizon (pure logic and
a throw-away SQLite file; how the scheduler merges changes is in test_writer_scheduler.py)."""

from __future__ import annotations

import sqlite3

from sqlite_to_weaviate.store import resends
from sqlite_to_weaviate.writer.job import request_timeout_for, write_horizon
from sqlite_to_weaviate.writer.payload import Delete, JobPayload


def db(tmp_path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "app.db", isolation_level=None)


def test_schedule_is_durable_and_keeps_the_later_due(tmp_path):
    conn = db(tmp_path)
    assert resends.pending(conn) == (0, None)
    resends.schedule(conn, [("u1", "items", (1,)), ("u2", "pairs", ("a", b"\x00", 2.5))], due=100.0, reason="lost")
    resends.schedule(conn, [("u1", "items", (1,))], due=50.0, reason="transient")  # earlier: keeps 100
    resends.schedule(conn, [("u2", "pairs", ("a", b"\x00", 2.5))], due=200.0, reason="fenced")
    conn.close()
    loaded = {r.object_id: r for r in resends.load(db(tmp_path))}
    assert loaded["u1"].due == 100.0 and loaded["u1"].key == (1,) and loaded["u1"].table == "items"
    assert loaded["u2"].due == 200.0 and loaded["u2"].key == ("a", b"\x00", 2.5)  # exact storage classes
    assert resends.pending(db(tmp_path)) == (2, 100.0)


def test_clear_deletes_only_resends_due_by_the_dispatch(tmp_path):
    conn = db(tmp_path)
    resends.schedule(conn, [("u1", "items", (1,)), ("u2", "items", (2,))], due=100.0, reason="lost")
    # u2 failed again after its re-send was dispatched: a later one is owed
    resends.schedule(conn, [("u2", "items", (2,))], due=300.0, reason="lost again")
    conn.execute("BEGIN IMMEDIATE")
    assert resends.clear(conn, [("u1", 100.0), ("u2", 100.0)]) == 1
    conn.execute("COMMIT")
    assert [r.object_id for r in resends.load(conn)] == ["u2"]


def test_clear_and_load_without_the_table(tmp_path):
    conn = db(tmp_path)
    assert resends.load(conn) == [] and resends.clear(conn, [("u", 1.0)]) == 0


def test_payload_carries_replace_and_reads_old_payloads():
    payload = JobPayload([{"uuid": "a", "collection": "C", "properties": {}}], [Delete("C", "b")], ["a"])
    again = JobPayload.loads(payload.dumps())
    assert again.replace == ["a"] and again.object_ids() == ["a", "b"]
    old = b'{"upserts": [], "deletes": [["C", "b", null]]}'  # written before replace existed
    assert JobPayload.loads(old).replace == []


def test_write_horizon_covers_a_call_started_just_before_the_lease_ends():
    for lease in (2.0, 4.0, 30.0):
        deadline = request_timeout_for(lease)
        # last call starts at lease - deadline; four tries with 1+2+4 s between them
        latest_landing_after_lease = -deadline + 4 * deadline + 7
        assert write_horizon(lease) > lease + latest_landing_after_lease
        assert write_horizon(lease) > write_horizon(lease / 2)
