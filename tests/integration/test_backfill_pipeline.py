"""Backfill end to end: pre-populated database -> outbox 'R' keys -> relay -> workers -> Weaviate.

Real SQLite, Redis and Weaviate; nothing mocked. Equality is checked independently of the
verifier (tests.support.pipeline.assert_stores_equal) plus a bit-for-bit vector sample.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from sqlite_to_weaviate.backfill import TableCheckpoint
from tests.support.backfill_data import (
    RereadPage, Writers, assert_vectors_equal, make_db, run_backfill, write_mapping,
)
from tests.support.pipeline import assert_stores_equal


def _setup(tmp_path, make_settings, pipeline_factory, rows: int, *, workers: int = 3, **overrides):
    db = tmp_path / "app.db"
    make_db(db, rows)
    values = dict(mapping_file=write_mapping(tmp_path), batch_size=200)
    values.update(overrides)
    settings = make_settings(db, **values)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(workers)
    return db, settings, pipeline


def _check_equal(weaviate_client, db, settings) -> int:
    conn = sqlite3.connect(db)
    mapping = settings.load_mapping(conn)
    conn.close()
    total = assert_stores_equal(weaviate_client, db, mapping)
    assert assert_vectors_equal(weaviate_client, db, mapping) > 0
    return total


def _backfill_prepopulated(tmp_path, make_settings, pipeline_factory, weaviate_client, rows: int) -> None:
    db, settings, pipeline = _setup(tmp_path, make_settings, pipeline_factory, rows)
    pipeline.start_relay_thread()
    report = run_backfill(settings, page_size=1000, workers=2, wait_applied=True, wait_timeout=600)
    assert report.done and report.applied
    assert report.tables["records"].rows_enqueued == rows
    assert report.tables["pairs"].rows_enqueued == rows // 4
    pipeline.wait_caught_up(300)
    assert _check_equal(weaviate_client, db, settings) == rows + rows // 4
    conn = sqlite3.connect(db)
    raw = conn.execute("SELECT value FROM _s2w_state WHERE key = 'backfill.records'").fetchone()[0]
    cp = TableCheckpoint.from_json("records", raw)
    assert cp.done and cp.rows_enqueued == rows and cp.total_estimate == rows and cp.last_key == (rows - 1,)
    # a second run finds every table done and enqueues nothing
    again = run_backfill(settings)
    assert again.rows_enqueued == 0 and all(t.already_done for t in again.tables.values())
    conn.close()


def test_backfill_prepopulated_20k(tmp_path, make_settings, pipeline_factory, weaviate_client):
    _backfill_prepopulated(tmp_path, make_settings, pipeline_factory, weaviate_client, 20_000)


@pytest.mark.slow
def test_backfill_prepopulated_100k(tmp_path, make_settings, pipeline_factory, weaviate_client):
    _backfill_prepopulated(tmp_path, make_settings, pipeline_factory, weaviate_client, 100_000)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backfill_while_writers_mutate_same_keys(seed, tmp_path, make_settings, pipeline_factory, weaviate_client):
    """Invariant 6: updates, deletes, PK changes and re-inserts race the backfill on the same keys,
    including an update of exactly the page the backfill just enqueued; final state is exact."""
    rows = 6000
    db, settings, pipeline = _setup(tmp_path, make_settings, pipeline_factory, rows, partitions=4, batch_size=50)
    pipeline.start_relay_thread()
    reread = RereadPage(db, seed)
    try:
        with Writers(db, [seed * 10 + k for k in range(3)], id_space=rows) as writers:
            time.sleep(0.2)
            # writers outrun the pipeline, so the backlog brake would hold the backfill until they
            # stop: this test is about interleaving, so pace the backfill instead (~2 s of overlap)
            report = run_backfill(settings, page_size=250, progress=reread, max_outbox_backlog=None,
                                  rows_per_second=3000)
            time.sleep(0.3)
        assert report.done and writers.count > 200, writers.count
        assert reread.pages >= 10 and reread.touched > rows // 3  # writers delete some keys meanwhile
    finally:
        reread.close()
    pipeline.wait_caught_up(300)
    _check_equal(weaviate_client, db, settings)


def test_backfill_wal_stays_bounded_under_busy_writer(tmp_path, make_settings, pipeline_factory, weaviate_client):
    """Short pages never hold a read open: the -wal file stays small while a writer hammers the DB."""
    rows = 10_000
    db, settings, pipeline = _setup(tmp_path, make_settings, pipeline_factory, rows)
    pipeline.start_relay_thread()
    wal = db.with_name(db.name + "-wal")
    sizes: list[int] = []

    def sample(_event) -> None:
        sizes.append(wal.stat().st_size if wal.exists() else 0)

    # a busy but sustainable writer (300 changes/s, each touching up to two rows): one the pipeline can
    # keep up with, so the backlog brake lets the backfill through
    with Writers(db, [11], id_space=rows, rate=300) as writers:
        report = run_backfill(settings, page_size=500, progress=sample, wait_applied=True, wait_timeout=300)
        for _ in range(20):
            sizes.append(wal.stat().st_size if wal.exists() else 0)
            time.sleep(0.05)
    assert report.done and report.applied and writers.count > 100
    assert len(sizes) > 30
    # 1000-page auto-checkpoints keep it near 4 MB; a scan held open would grow it without bound
    assert max(sizes) < 24 * 1024 * 1024, f"WAL grew to {max(sizes)} bytes"
    pipeline.wait_caught_up(300)
    _check_equal(weaviate_client, db, settings)
