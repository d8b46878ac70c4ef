"""SIGKILL the backfill process at random moments, resume, and prove nothing was skipped or re-read.

The backfill runs as a real process: ``python -m sqlite_to_weaviate backfill``. No relay runs while it is being killed, so the outbox keeps
every 'R' row and we can count them: because a page and its checkpoint commit together,
every key is enqueued exactly once across all the killed runs (stronger than "at most once
per crash"), and a finished table never gets another 'R' row.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from sqlite_to_weaviate.backfill import TableCheckpoint
from tests.support.backfill_data import make_db, write_mapping
from sqlite_to_weaviate.operate.worker_pool import worker_cli_env as cli_env
from tests.support.pipeline import assert_stores_equal

ARGS = ["--page-size", "200", "--rows-per-second", "5000", "--max-backlog", "0"]


def _spawn(settings, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sqlite_to_weaviate", "backfill", *ARGS], env=cli_env(settings), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _checkpoints(conn) -> dict[str, TableCheckpoint]:
    return {k.removeprefix("backfill."): TableCheckpoint.from_json(k.removeprefix("backfill."), v)
            for k, v in conn.execute("SELECT key, value FROM _s2w_state WHERE key LIKE 'backfill.%'")}


def test_sigkill_at_random_points_then_resume(tmp_path, make_settings, pipeline_factory, weaviate_client):
    rows = 12_000
    db = tmp_path / "app.db"
    make_db(db, rows, pairs=3000)
    settings = make_settings(db, mapping_file=write_mapping(tmp_path), batch_size=200)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    conn = sqlite3.connect(db)
    rng = random.Random(42)
    kills, previous = 0, {}
    with open(tmp_path / "backfill.log", "ab") as log:
        while True:
            proc = _spawn(settings, log)
            if kills < 6:
                # kill at a random point of the scan: once progress passes a random target,
                # at whatever moment of the page transaction the process happens to be in
                done_so_far = sum(cp.rows_enqueued for cp in _checkpoints(conn).values())
                target = done_so_far + rng.randrange(1, 3000)
                while proc.poll() is None and sum(cp.rows_enqueued for cp in _checkpoints(conn).values()) < target:
                    time.sleep(rng.uniform(0.001, 0.02))
            if kills < 6 and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
            else:
                assert proc.wait(timeout=120) == 0
                break
            now = _checkpoints(conn)
            for table, cp in previous.items():   # progress is monotone: never back to the start
                assert now[table].rows_enqueued >= cp.rows_enqueued
                if cp.done:
                    assert now[table] == cp        # a finished table is never touched again
            previous = now
    assert kills >= 3, "the backfill finished before it could be killed; slow it down"
    counts = dict(conn.execute("SELECT tbl, count(*) FROM _s2w_bulk WHERE op = 'R' GROUP BY tbl"))
    assert counts == {"records": rows, "pairs": 3000}
    # every key exactly once
    assert conn.execute("SELECT max(c) FROM (SELECT count(*) c FROM _s2w_bulk WHERE op='R' GROUP BY tbl, k1, k2)"
                        ).fetchone()[0] == 1
    final = _checkpoints(conn)
    assert final["records"].done and final["records"].rows_enqueued == rows
    assert final["pairs"].done and final["pairs"].rows_enqueued == 3000
    conn.close()
    pipeline.start_workers(3)
    pipeline.drain(300)
    mapping_conn = sqlite3.connect(db)
    assert assert_stores_equal(weaviate_client, db, settings.load_mapping(mapping_conn)) == rows + 3000
    mapping_conn.close()
