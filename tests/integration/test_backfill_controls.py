"""Operator controls against a real database: dry run writes nothing, pause/resume, the backlog
brake, --restart, the memory cap, selected tables, and refusing to run without capture."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time

import pytest
from click.testing import CliRunner

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.backfill import CaptureNotInstalled
from sqlite_to_weaviate.cli.backfill import backfill_cmd
from sqlite_to_weaviate.errors import ConfigError
from tests.support.backfill_data import make_db, run_backfill, write_mapping
from sqlite_to_weaviate.operate.worker_pool import worker_cli_env as cli_env


def _fingerprint(db):
    """The database file's bytes and mtime, and the WAL's content (a read-only open may leave
    an empty -wal behind; SQLite needs it to read a WAL database, it holds no data)."""
    wal = db.with_name(db.name + "-wal")
    return (hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns,
            hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest())


def _installed(tmp_path, make_settings, rows=3000, **overrides):
    db = tmp_path / "app.db"
    make_db(db, rows)
    conn = sqlite3.connect(db, isolation_level=None)
    capture.install(conn, ["records", "pairs"])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db, make_settings(db, mapping_file=write_mapping(tmp_path), **overrides)


def _r_count(db, table=None):
    conn = sqlite3.connect(db)
    try:
        sql = "SELECT count(*) FROM _s2w_bulk WHERE op='R'" + (" AND tbl=?" if table else "")
        return conn.execute(sql, (table,) if table else ()).fetchone()[0]
    finally:
        conn.close()


def test_dry_run_writes_nothing(tmp_path, make_settings, weaviate_client, collection_prefix):
    db, settings = _installed(tmp_path, make_settings)
    before = _fingerprint(db)
    result = CliRunner().invoke(backfill_cmd, ["--dry-run"], env=cli_env(settings), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "records -> " in result.output and "3000 row(s)" in result.output
    assert "big " in result.output and " text" in result.output        # big ints mapped as text
    assert "seenAt" in result.output and " date" in result.output
    assert "vector from embedding" in result.output and "nothing was written" in result.output
    assert _fingerprint(db) == before
    assert _r_count(db) == 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM _s2w_state WHERE key LIKE 'backfill.%'").fetchone()[0] == 0
    conn.close()
    assert not [n for n in weaviate_client.collections.list_all(simple=True) if n.startswith(collection_prefix)]
    # works (and still writes nothing) before capture is installed
    db2 = tmp_path / "plain.db"
    make_db(db2, 100)
    before2 = _fingerprint(db2)
    result = CliRunner().invoke(backfill_cmd, ["--dry-run", "--json"], env=cli_env(settings.replace(sqlite_path=db2)))
    assert result.exit_code == 0 and '"dry_run": true' in result.output
    assert _fingerprint(db2) == before2


def test_pause_and_resume_through_the_state_flag(tmp_path, make_settings):
    db, settings = _installed(tmp_path, make_settings)
    env = cli_env(settings)
    assert CliRunner().invoke(backfill_cmd, ["--pause"], env=env).exit_code == 0
    stop = threading.Event()
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", run_backfill(settings, stop=stop, page_size=100)))
    thread.start()
    time.sleep(1.0)
    assert _r_count(db) == 0 and thread.is_alive()
    assert CliRunner().invoke(backfill_cmd, ["--resume"], env=env).exit_code == 0
    thread.join(30)
    assert out["r"].done and _r_count(db) == 3000 + 750
    assert out["r"].pauses.get("backfill.paused=1", 0) > 0.5


def test_backlog_brake_waits_for_the_relay(tmp_path, make_settings):
    db, settings = _installed(tmp_path, make_settings)
    stop = threading.Event()
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault(
        "r", run_backfill(settings, stop=stop, page_size=100, max_outbox_backlog=500)))
    thread.start()
    time.sleep(1.0)
    held = _r_count(db)
    assert 500 <= held <= 600, held               # brake engaged: no relay is draining the outbox
    # pretend the relay applied everything so far: the brake releases
    conn = sqlite3.connect(db, isolation_level=None)
    for _ in range(100):
        conn.execute("INSERT OR REPLACE INTO _s2w_state VALUES ('relay.bulk_checkpoint', "
                     "(SELECT coalesce(max(seq), 0) FROM _s2w_bulk))")
        if not thread.is_alive():
            break
        time.sleep(0.1)
    conn.close()
    thread.join(30)
    assert out["r"].done and _r_count(db) == 3750
    assert out["r"].pauses.get("bulk", 0) > 0.5


def test_stop_restart_tables_and_memory_cap(tmp_path, make_settings):
    db, settings = _installed(tmp_path, make_settings)
    # selected table only
    report = run_backfill(settings, tables=["pairs"], page_size=100)
    assert set(report.tables) == {"pairs"} and _r_count(db, "records") == 0 and _r_count(db, "pairs") == 750
    with pytest.raises(ConfigError, match="did you mean 'records'"):
        run_backfill(settings, tables=["recrods"])
    # a stop between pages leaves a consistent checkpoint; the next run continues
    stop = threading.Event()
    n = {"pages": 0}

    def stop_after_3(event):
        n["pages"] += bool(event.page_rows)
        if n["pages"] == 3:
            stop.set()

    first = run_backfill(settings, tables=["records"], page_size=100, progress=stop_after_3, stop=stop)
    assert first.stopped and not first.done and 300 <= _r_count(db, "records") <= 400
    # memory cap below the process's RSS: pages shrink (not below 10) yet it completes
    second = run_backfill(settings, tables=["records"], page_size=100, memory_limit_mb=1, poll_interval=0.001)
    assert second.done and second.tables["records"].resumed and _r_count(db, "records") == 3000
    # --restart enqueues everything again
    result = CliRunner().invoke(backfill_cmd, ["--restart", "--table", "records", "--page-size", "1000"],
                                env=cli_env(settings))
    assert result.exit_code == 0, result.output
    assert _r_count(db, "records") == 6000


def test_refuses_without_capture(tmp_path, make_settings):
    db = tmp_path / "plain.db"
    make_db(db, 10)
    settings = make_settings(db, mapping_file=write_mapping(tmp_path))
    with pytest.raises(CaptureNotInstalled, match="init"):
        run_backfill(settings)
    result = CliRunner().invoke(backfill_cmd, [], env=cli_env(settings))
    assert result.exit_code == 3 and "init" in result.output
