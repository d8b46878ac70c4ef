"""Pure parts of issue 14 item 4: TEXT that is not UTF-8 as a value, and the stuck-relay rule."""

from __future__ import annotations

import base64
import sqlite3

import pytest

from sqlite_to_weaviate.backfill.keys import decode_key, encode_key, key_from_json, key_to_json
from sqlite_to_weaviate.mapping.convert import convert_value
from sqlite_to_weaviate.mapping.errors import ValueConversionError
from sqlite_to_weaviate.mapping.hashing import hash_values
from sqlite_to_weaviate.mapping.identity import canonical_key, object_uuid
from sqlite_to_weaviate.mapping.types import DataType
from sqlite_to_weaviate.sqlite_text import InvalidText, bind, fetch_all, lenient_text, marker
from sqlite_to_weaviate.writer.stuck import ErrorStreak, StreakRecorder, continue_streak, load_streak, stuck_for

BAD = InvalidText(b"\xc3(")


def test_sqlite_fails_the_whole_statement_and_fetch_all_returns_the_value():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 'fine'), (2, CAST(x'c328' AS TEXT)), (3, 'also fine')")
    with pytest.raises(sqlite3.OperationalError, match="Could not decode to UTF-8"):
        conn.execute("SELECT * FROM t").fetchall()
    assert fetch_all(conn, "SELECT * FROM t ORDER BY id") == [(1, "fine"), (2, BAD), (3, "also fine")]
    assert conn.text_factory is str  # restored
    # and the value binds back as the same TEXT, so a key holding it can be found again
    assert fetch_all(conn, f"SELECT id FROM t WHERE body = {marker(BAD)}", [bind(BAD)]) == [(2,)]
    assert conn.execute("SELECT id FROM t WHERE body = ?", [bind(BAD)]).fetchall() == []  # a BLOB never equals


def test_lenient_text_keeps_valid_text_and_wraps_the_rest():
    assert lenient_text("é".encode()) == "é"
    assert lenient_text(b"\xff") == InvalidText(b"\xff")
    assert InvalidText(b"\xff") != b"\xff" and hash(InvalidText(b"\xff")) != hash(b"\xff")
    assert "ff" in InvalidText(b"\xff").describe()


def test_conversions_refuse_text_store_blob_and_never_crash():
    with pytest.raises(ValueConversionError, match=r"not valid UTF-8 \(2 bytes: c3 28\).*type = \"blob\""):
        convert_value(BAD, DataType.TEXT)
    assert convert_value(BAD, DataType.BLOB) == base64.b64encode(b"\xc3(").decode()
    for data_type in (DataType.INT, DataType.NUMBER, DataType.BOOLEAN, DataType.DATE, DataType.OBJECT):
        with pytest.raises(ValueConversionError):
            convert_value(BAD, data_type)


def test_identity_hash_and_checkpoint_encode_invalid_text_exactly():
    assert canonical_key("t", (BAD,)) == '["t",{"xt":"wyg="}]'
    assert object_uuid("t", (BAD,)) != object_uuid("t", (b"\xc3(",))  # TEXT and BLOB keys stay apart
    assert hash_values("t", ("a",), {"a": BAD}) != hash_values("t", ("a",), {"a": b"\xc3("})
    key = (1, BAD, "x")
    assert decode_key(encode_key(key)) == key
    assert key_from_json(key_to_json(key)) == key


def test_a_streak_grows_without_progress_and_restarts_with_it():
    first = continue_streak(None, "e1", checkpoint=10, now=100.0)
    second = continue_streak(first, "e2", checkpoint=10, now=105.0)
    assert (second.at, second.last_at, second.count, second.error) == (100.0, 105.0, 2, "e2")
    after_progress = continue_streak(second, "e3", checkpoint=11, now=106.0)
    assert (after_progress.at, after_progress.count) == (106.0, 1)


@pytest.mark.parametrize("streak, checkpoint, pending, now, expected", [
    (ErrorStreak("e", 100.0, 140.0, 5, 10), 10, 3, 141.0, 41.0),     # stuck: failing, nothing applied
    (ErrorStreak("e", 100.0, 140.0, 5, 10), 11, 3, 141.0, None),     # the checkpoint moved since
    (ErrorStreak("e", 100.0, 140.0, 5, 10), 10, 0, 141.0, None),     # nothing is waiting
    (ErrorStreak("e", 100.0, 100.0, 1, 10), 10, 3, 141.0, None),     # one error is not a streak
    (ErrorStreak("e", 100.0, 125.0, 5, 10), 10, 3, 126.0, None),     # not for long enough yet (30 s)
    (ErrorStreak("e", 100.0, 140.0, 5, 10), 10, 3, 300.0, None),     # errors stopped: relay gone, not stuck
    (None, 10, 3, 141.0, None),
])
def test_stuck_means_repeated_failures_with_nothing_applied(streak, checkpoint, pending, now, expected):
    assert stuck_for(streak, checkpoint=checkpoint, pending=pending, now=now, max_stuck=30.0,
                     recent=70.0) == expected


def test_the_streak_is_durable_and_a_restarted_relay_continues_it(tmp_path):
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    from sqlite_to_weaviate.store.state import ensure_state_table

    ensure_state_table(conn)  # the tool's own, recorded in its registry
    StreakRecorder().note(conn, "first", checkpoint=5, now=100.0)
    restarted = StreakRecorder()
    streak = restarted.note(conn, "second", checkpoint=5, now=110.0)
    assert (streak.at, streak.count, streak.error) == (100.0, 2, "second")
    assert load_streak(conn) == streak
    conn.execute("UPDATE _s2w_state SET value = '{\"at\": 50.0, \"error\": \"old form\"}'")
    assert load_streak(conn) == ErrorStreak("old form", 50.0, 50.0, 1, -1)
