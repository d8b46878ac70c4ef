"""One TEXT value that is not UTF-8 must cost one dead letter, never the pipeline (issue 14, item 4).

Before the fix, Python's sqlite3 failed every statement that read such a value: after a
live ``INSERT ... CAST(x'c328' AS TEXT)`` the relay backed off forever and nothing later
was applied, the backfill's dry run and the verifier crashed, and ``status`` / ``/healthz``
said healthy. Now the value arrives as ``InvalidText`` and only its row is refused.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.error
import urllib.request

import pytest

from sqlite_to_weaviate.backfill import BackfillOptions, backfill
from sqlite_to_weaviate.mapping import object_uuid
from sqlite_to_weaviate.operate.sidecar import Sidecar, SidecarOptions
from sqlite_to_weaviate.sqlite_text import InvalidText
from sqlite_to_weaviate.verify import verify
from sqlite_to_weaviate.store import dead_letters
from sqlite_to_weaviate.writer.status import collect_status
from tests.support.pipeline import wait_for

pytestmark = pytest.mark.integration

SCHEMA = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, rank INTEGER);
CREATE TABLE tags (name TEXT PRIMARY KEY, weight REAL);
"""


def make_db(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def objects(client, collection: str) -> dict[str, dict]:
    return {str(o.uuid): dict(o.properties) for o in client.collections.use(collection).iterator()}


def test_live_invalid_utf8_is_one_dead_letter_and_later_changes_apply(tmp_path, make_settings, pipeline_factory,
                                                                       weaviate_client):
    db = tmp_path / "app.db"
    app = make_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    pipeline.start_relay_thread()
    app.executemany("INSERT INTO notes VALUES (?, ?, ?)", [(i, f"note {i}", i) for i in range(1, 6)])
    app.execute("INSERT INTO notes VALUES (6, CAST(x'c328' AS TEXT), 6)")  # the value from the issue
    app.execute("INSERT INTO tags VALUES (CAST(x'ff61' AS TEXT), 1.5)")     # not UTF-8 in a TEXT primary key
    app.execute("INSERT INTO tags VALUES ('fine', 2.5)")
    app.executemany("INSERT INTO notes VALUES (?, ?, ?)", [(i, f"later {i}", i) for i in range(7, 11)])
    app.execute("UPDATE notes SET body = 'updated after the bad row' WHERE id = 1")
    app.execute("DELETE FROM notes WHERE id = 2")
    pipeline.wait_caught_up(90)

    mapping = pipeline.relay.mapping
    notes = objects(weaviate_client, mapping.tables["notes"].collection)
    assert str(object_uuid("notes", (6,))) not in notes
    assert str(object_uuid("notes", (2,))) not in notes
    assert notes[str(object_uuid("notes", (1,)))]["body"] == "updated after the bad row"
    assert {notes[str(object_uuid("notes", (i,)))]["body"] for i in range(7, 11)} == {f"later {i}" for i in range(7, 11)}
    tags = objects(weaviate_client, mapping.tables["tags"].collection)
    assert set(tags) == {str(object_uuid("tags", ("fine",)))}

    conn = sqlite3.connect(db)
    try:
        letters = {d.table: d for d in dead_letters.list_letters(conn)}
    finally:
        conn.close()
    assert set(letters) == {"notes", "tags"}
    assert letters["notes"].key == (6,) and letters["notes"].uuid == str(object_uuid("notes", (6,)))
    for fragment in ("notes", "body", "not valid UTF-8", "c3 28"):
        assert fragment in letters["notes"].reason
    assert "ff 61" in letters["tags"].reason and "name" in letters["tags"].reason
    assert letters["tags"].uuid == str(object_uuid("tags", (InvalidText(b"\xffa"),)))

    st = collect_status(settings, max_stuck_s=1)
    assert st.dead_letters == 2 and st.outbox_depth == 0 and st.stuck_seconds is None
    assert st.problems == ["2 dead letter(s): see `sqlite-to-weaviate dead-letters list`"]

    # verify reads the bad rows too: they are refused rows (missing from Weaviate), nothing else differs
    report = verify(settings, sample=20)
    assert report.error is None
    for table in ("notes", "tags"):
        assert report.tables[table].refused.total == 1 and report.tables[table].differences == 1
    assert report.exit_code() == 1
    report.allow_refused = True
    assert report.exit_code() == 0


def test_backfill_dry_run_and_backfill_survive_invalid_utf8(tmp_path, make_settings, pipeline_factory,
                                                           weaviate_client):
    db = tmp_path / "app.db"
    app = make_db(db)
    app.executemany("INSERT INTO notes VALUES (?, ?, ?)", [(i, f"note {i}", i) for i in range(1, 301)])
    app.execute("UPDATE notes SET body = CAST(x'c328' AS TEXT) WHERE id = 150")
    # bad text keys in the middle of the key order: the keyset scan must continue after them
    app.executemany("INSERT INTO tags VALUES (?, ?)", [(f"tag{i:03d}", i) for i in range(100)])
    app.execute("INSERT INTO tags VALUES (CAST(x'74616735c3' AS TEXT), 0.5)")  # 'tag5' + a cut character
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()

    plan = backfill(settings, BackfillOptions(dry_run=True, tables=None))
    assert plan.tables["notes"].total_estimate == 300 and plan.tables["tags"].total_estimate == 101

    pipeline.start_workers(1)
    pipeline.start_relay_thread()
    report = backfill(settings, BackfillOptions(page_size=40, wait_applied=True, wait_timeout=120))
    assert report.done and report.applied
    assert report.tables["notes"].total_enqueued == 300 and report.tables["tags"].total_enqueued == 101
    pipeline.wait_caught_up(60)
    mapping = pipeline.relay.mapping
    assert len(objects(weaviate_client, mapping.tables["notes"].collection)) == 299
    assert len(objects(weaviate_client, mapping.tables["tags"].collection)) == 100
    conn = sqlite3.connect(db)
    try:
        assert sorted((d.table, d.stage) for d in dead_letters.list_letters(conn)) == [
            ("notes", "mapping"), ("tags", "mapping")]
    finally:
        conn.close()


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_status_and_healthz_report_a_stuck_relay_with_its_error(tmp_path, make_settings, weaviate_server_factory,
                                                                redis_client):
    """Weaviate refusing every batch: the relay retries for ever. That is stuck, and says why."""
    server = weaviate_server_factory()
    db = tmp_path / "app.db"
    app = make_db(db)
    settings = make_settings(db, weaviate_url=server.url)
    sidecar = Sidecar(settings, SidecarOptions(workers=1, backfill=False, metrics_port=0, max_stuck_s=3,
                                               shutdown_grace=1, worker_stop_timeout=10, log_dir=tmp_path / "logs"))
    thread = threading.Thread(target=sidecar.run, daemon=True)
    thread.start()
    try:
        assert sidecar.ready.wait(120)
        health = f"http://127.0.0.1:{sidecar.metrics.port}/healthz"
        app.execute("INSERT INTO notes VALUES (1, 'applied', 1)")
        wait_for(lambda: collect_status(settings).outbox_depth == 0, timeout=60, message="first change applied")
        assert get(health)[0] == 200

        server.stop()
        app.execute("INSERT INTO notes VALUES (2, 'waits for weaviate', 2)")
        status, body = wait_for(lambda: (r := get(health))[0] == 503 and r, timeout=90,
                                message="/healthz never reported the stuck relay")
        stuck = [p for p in body["problems"] if p.startswith("relay stuck")]
        assert stuck, body
        st = collect_status(settings, max_stuck_s=3)
        assert st.stuck_seconds is not None and st.stuck_seconds > 3
        assert any(p.startswith("relay stuck") for p in st.problems)
        assert st.last_error["count"] >= 2 and st.last_error["error"] in stuck[0]
        # the worker's failure, as the relay saw it, naming what the job held (app changes: a live slot)
        assert st.last_error["error"].startswith("live slot ")

        server.start()
        wait_for(lambda: collect_status(settings).outbox_depth == 0, timeout=120, message="applied after recovery")
        assert collect_status(settings, max_stuck_s=3).stuck_seconds is None
        wait_for(lambda: get(health)[0] == 200, timeout=30, message="/healthz healthy again")
    finally:
        sidecar.stop()
        thread.join(120)
