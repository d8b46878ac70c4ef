"""Long versions of the scale-out fault tests (``-m slow``, excluded from the default suite).

    python -m pytest -m slow tests/integration/test_cluster_soak.py

* a 3-node cluster (RF 3, QUORUM) under a 20,000-row backfill and steady live writes
  while every node in turn is SIGKILLed and restarted, then two at once for a while;
* three Sentinel failovers in a row during replay, each old primary coming back as a
  replica of the new one.

Both end with SQLite equal to what every node serves (verifier through each node, and
each node's own listing), with no human action in between.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time

import pytest

from sqlite_to_weaviate.local.redis_sentinel import RedisSentinelSet, wait_synced
from sqlite_to_weaviate.store import dead_letters
from tests.support.backfill_data import Writers, make_db as make_backfill_db, run_backfill, write_mapping
from tests.integration.test_cluster_faults import (
    assert_every_node_serves_the_database, cluster_settings, settle_with_self_checks, verify_through_every_node,
    workers_on,
)
from tests.integration.test_writer_pipeline import make_db, random_writes
from tests.support.pipeline import assert_stores_equal_soon

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_rolling_node_kills_and_two_down_under_backfill_and_live_writes(tmp_path, weaviate_cluster_factory,
                                                                        make_settings, pipeline_factory):
    cluster = weaviate_cluster_factory(3)
    rows = 20_000
    db = tmp_path / "app.db"
    make_backfill_db(db, rows)
    settings = cluster_settings(make_settings, db, cluster, mapping_file=write_mapping(tmp_path), batch_size=200)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    for node in cluster.nodes[1:]:
        workers_on(pipeline, node.url, 1, pipeline.log_dir)
    relay = pipeline.start_relay_thread()
    rng = random.Random(17)
    faults: list[str] = []
    done = threading.Event()

    def inject() -> None:
        order = [1, 2, 0, 2]
        for victim in order:
            if done.wait(rng.uniform(4, 10)):
                return
            cluster.nodes[victim].kill()
            faults.append(f"kill n{victim}")
            time.sleep(rng.uniform(3, 8))
            cluster.nodes[victim].start()
        if done.wait(5):
            return
        cluster.nodes[1].kill()
        cluster.nodes[2].kill()
        faults.append("kill n1+n2")
        time.sleep(12)
        cluster.nodes[2].start()
        cluster.nodes[1].start()

    injector = threading.Thread(target=inject)
    with Writers(db, seeds=[5, 6], id_space=rows + rows // 10, rate=25):
        injector.start()
        report = run_backfill(settings, page_size=500)
        assert report.done
        injector.join()
    pipeline.wait_caught_up(600)
    done.set()
    assert len(faults) == 5, faults
    conn = sqlite3.connect(db)
    assert dead_letters.count(conn) == 0, [d.reason for d in dead_letters.list_letters(conn)]
    mapping = settings.load_mapping(conn)
    settle_with_self_checks(settings, cluster, db, mapping, timeout=600)
    pipeline.stop()
    verify_through_every_node(settings, cluster)
    assert assert_every_node_serves_the_database(cluster, db, mapping, timeout=300) > rows // 2
    assert relay.stats["retries"] > 0


def test_three_sentinel_failovers_in_a_row_during_replay(tmp_path, make_settings, pipeline_factory, weaviate_client):
    servers = RedisSentinelSet(tmp_path / "sentinel-set").start()
    try:
        db = tmp_path / "app.db"
        conn = make_db(db)
        settings = make_settings(db, redis_url=servers.url)
        pipeline = pipeline_factory(settings)
        pipeline.init()
        workers = pipeline.start_workers(2)
        relay = pipeline.start_relay_thread()
        stop = threading.Event()

        def write() -> None:
            wconn = sqlite3.connect(db, isolation_level=None, timeout=30)
            rng = random.Random(31)
            while not stop.is_set():
                random_writes(wconn, rng, 10)
                time.sleep(0.05)
            wconn.close()

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for _ in range(3):
                time.sleep(4)
                old_port = servers.primary_port()
                old = servers.server_on(old_port)
                old.kill()
                servers.wait_for_new_primary(old_port)
                time.sleep(2)
                old.start()  # comes back empty; the sentinels turn it into a replica of the new primary
                wait_synced(old, timeout=60)
        finally:
            stop.set()
            writer.join()
        pipeline.wait_caught_up(180)
        assert relay.stats["redis_failovers"] >= 3
        assert all(w.poll() is None for w in workers)
        assert_stores_equal_soon(weaviate_client, db, settings.load_mapping(conn))
    finally:
        servers.stop()
