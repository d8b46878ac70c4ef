"""The durable re-send list, the payload's replace list, the write horizon and how the relay
merges two changes of one key (pure logic and a throw-away SQLite file)."""

from __future__ import annotations

import sqlite3
import uuid

from sqlite_to_weaviate.store import resends
from sqlite_to_weaviate.writer.job import request_timeout_for, write_horizon
from sqlite_to_weaviate.writer.payload import Delete, JobPayload
from sqlite_to_weaviate.writer.relay import Entry, Partition


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


def test_entries_of_one_key_merge_suspect_and_the_later_resend():
    oid = uuid.uuid4()
    p = Partition(0)
    p.add(Entry("items", (1,), oid, [5], 10.0))
    p.add(Entry("items", (1,), oid, [], None, suspect=True, resend_due=99.0))
    p.add(Entry("items", (1,), oid, [9], 8.0))
    merged = p.pending[oid]
    assert merged.seqs == [5, 9] and merged.suspect and merged.resend_due == 99.0 and merged.captured_at == 8.0


def test_requeue_marks_a_failed_jobs_entries_suspect_and_keeps_them_in_front():
    a, b = uuid.uuid4(), uuid.uuid4()
    p = Partition(0)
    p.add(Entry("items", (2,), b, [7]))
    p.requeue_front([Entry("items", (1,), a, [3]), Entry("items", (2,), b, [4])], suspect=True)
    assert list(p.pending) == [a, b]
    assert p.pending[a].suspect and p.pending[b].suspect and p.pending[b].seqs == [4, 7]
