"""Pure parts of the backfill: exact key encoding for checkpoints, throttling math, options."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from sqlite_to_weaviate.backfill import BackfillOptions, TableCheckpoint, key_from_json, key_to_json, throttle_delay
from sqlite_to_weaviate.backfill.keys import decode_value, encode_value
from sqlite_to_weaviate.backfill.throttle import Throttle, eta_seconds, page_size_for_rate
from sqlite_to_weaviate.errors import ConfigError


@pytest.mark.parametrize("key", [
    (1,), (-(2**63),), (2**63 - 1,), ("a",), ("",), ("é\u0000x",), (b"\x00\xff",), (b"",),
    (0.1,), (-0.0,), (1e300,), (float("inf"),), (float("-inf"),), (1.0,), (5e-324,),
    (1, "1", b"1", 1.5), ("conv", 42),
])
def test_key_round_trip_is_exact(key):
    back = key_from_json(key_to_json(key))
    assert back == key
    assert [type(v) for v in back] == [type(v) for v in key]
    for a, b in zip(back, key):
        if isinstance(a, float):
            assert math.copysign(1, a) == math.copysign(1, b)  # -0.0 stays -0.0


def test_key_encoding_distinguishes_storage_classes():
    assert encode_value(1) == 1
    assert encode_value("1") == "1"
    assert encode_value(1.0) == {"f": "1.0"}
    assert encode_value(b"1") == {"b64": "MQ=="}
    assert key_to_json(None) == "null" and key_from_json("null") is None
    assert encode_value(True) == 1  # sqlite3 never returns bools, but they are ints


def test_key_encoding_rejects_non_keys():
    with pytest.raises(TypeError):
        encode_value(None)
    with pytest.raises(ValueError):
        decode_value({"x": 1})
    with pytest.raises(ValueError):
        decode_value([1])


def test_decoded_key_resumes_keyset_exactly():
    """The decoded cursor compares in SQLite exactly like the value it came from."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k PRIMARY KEY, v)")  # no affinity: mixed storage classes
    values = [1, 2, 1.5, 2.0000000000000004, "1", "a", b"\x00", b"\x01", -0.5]
    conn.executemany("INSERT INTO t VALUES (?, 0)", [(v,) for v in values])
    ordered = [r[0] for r in conn.execute("SELECT k FROM t ORDER BY k")]
    for i, v in enumerate(ordered):
        cursor = key_from_json(key_to_json((v,)))
        rest = [r[0] for r in conn.execute("SELECT k FROM t WHERE (k) > (?) ORDER BY k", cursor)]
        assert rest == ordered[i + 1:]


def test_checkpoint_json_round_trip():
    cp = TableCheckpoint(table="t", last_key=("a", b"\x01", 2.5, 7), rows_enqueued=10, total_estimate=20,
                         done=False, started_at=1.0, updated_at=2.0, last_seq=99)
    data = json.loads(cp.to_json())
    assert data["last_key"] == ["a", {"b64": "AQ=="}, {"f": "2.5"}, 7]
    assert set(data) >= {"last_key", "rows_enqueued", "total_estimate", "done", "started_at", "updated_at"}
    assert TableCheckpoint.from_json("t", cp.to_json()) == cp
    # unknown fields written by a newer version are ignored
    assert TableCheckpoint.from_json("t", json.dumps(data | {"future": 1})) == cp


def test_throttle_delay_math():
    assert throttle_delay(0, 100.0, 0.0) == 0.0
    assert throttle_delay(100, None, 0.0) == 0.0
    assert throttle_delay(100, 100.0, 0.0) == pytest.approx(1.0)
    assert throttle_delay(100, 100.0, 0.4) == pytest.approx(0.6)
    assert throttle_delay(100, 100.0, 2.0) == 0.0   # behind schedule: no wait, never negative
    assert throttle_delay(1000, 250.0, 1.0) == pytest.approx(3.0)


def test_throttle_keeps_the_long_run_average_without_drift():
    now = [0.0]
    t = Throttle(500.0, clock=lambda: now[0])
    total = 0
    for _ in range(100):
        total += 50
        now[0] += 0.001                 # the page itself takes 1 ms
        now[0] += t.delay(50)           # sleep what it says
    assert total / now[0] == pytest.approx(500.0, rel=0.01)


def test_throttle_reanchors_after_a_long_pause():
    now = [0.0]
    t = Throttle(100.0, clock=lambda: now[0])
    now[0] += t.delay(100)
    now[0] += 60.0                      # paused for a minute
    assert t.delay(100) == 0.0          # no catch-up burst owed...
    assert t.delay(100) == pytest.approx(1.0)   # ...and the cap applies again from here


def test_page_size_for_rate_and_eta():
    assert page_size_for_rate(1000, None) == 1000
    assert page_size_for_rate(1000, 200.0) == 200
    assert page_size_for_rate(1000, 0.5) == 1
    assert page_size_for_rate(50, 10_000.0) == 50
    assert eta_seconds(1000, 100.0) == 10.0
    assert eta_seconds(None, 100.0) is None and eta_seconds(10, None) is None and eta_seconds(-5, 1.0) == 0


@pytest.mark.parametrize("kwargs", [
    {"page_size": 0}, {"rows_per_second": 0}, {"max_outbox_backlog": -1}, {"memory_limit_mb": 0}, {"workers": 0},
])
def test_options_validate(kwargs):
    with pytest.raises(ConfigError):
        BackfillOptions(**kwargs)


def test_progress_display_bar_and_callback():
    import io

    from sqlite_to_weaviate.backfill import ProgressDisplay, ProgressEvent

    seen = []
    out = io.StringIO()
    display = ProgressDisplay(stream=out, tty=True, callback=seen.append)
    display.update(ProgressEvent("records", 500, 1000, 250.0, 2.0, live_lag_s=0.42, queued=1800))
    assert "live lag 0.4s · 1,800 queued" in out.getvalue()  # the lanes apart (invariant 11)
    display.update(ProgressEvent("records", 500, 1000, None, None, paused="bulk backlog 30000 > 20000"))
    display.update(ProgressEvent("records", 1000, 1000, 250.0, 0.0, done=True))
    display.close()
    text = out.getvalue()
    assert "records" in text and "1.00k/1.00k" in text and "paused: bulk backlog" in text and "live lag -" in text
    assert [e.rows_done for e in seen] == [500, 500, 1000]


def test_progress_log_lines_carry_the_lanes():
    from structlog.testing import capture_logs

    from sqlite_to_weaviate.backfill import ProgressDisplay, ProgressEvent

    with capture_logs() as logs:
        display = ProgressDisplay(tty=False, log_interval=0.0)
        display.update(ProgressEvent("records", 500, 1000, 250.0, 2.0, live_lag_s=1.25, queued=700))
    line, = [e for e in logs if e["event"] == "backfill progress"]
    assert line["live_lag_s"] == 1.25 and line["queued"] == 700 and line["table"] == "records"
