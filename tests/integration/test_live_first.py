"""Invariant 11 end to end: app changes are applied while history waits, and never behind it."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest
import redis
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from sqlite_to_weaviate.backfill import BackfillOptions, backfill
from sqlite_to_weaviate.cli import main
from sqlite_to_weaviate.operate.metrics import MetricsSample, SidecarCollector
from sqlite_to_weaviate.store import progress
from sqlite_to_weaviate.store.lanes import BULK, LIVE, high_water
from sqlite_to_weaviate.writer.status import collect_status
from tests.support.pipeline import assert_stores_equal, wait_for

HISTORY_ROWS = 3000


def test_live_changes_overtake_a_history_backlog(tmp_path, make_settings, pipeline_factory, weaviate_client):
    """Only a live-only worker runs at first, so no history job can be applied: live inserts,
    updates and deletes must land anyway, including keys whose history entry waits in the
    relay (key 1500: read, not yet in a job) or still in the bulk lane (2995, 2990): the
    live change takes the key over, and its row is read at dispatch. ``status``, the CLI and
    ``/metrics`` show the lanes apart; with no worker at all, the live backlog and its age
    show. Then a general worker drains both lanes, live first, and the stores are equal."""
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"history {i}", i) for i in range(HISTORY_ROWS)])
    settings = make_settings(db, partitions=8, batch_size=100)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    report = backfill(settings, BackfillOptions(page_size=500))  # every row into the bulk lane, no waiting
    assert report.done and high_water(conn, BULK) >= HISTORY_ROWS
    pipeline.start_workers(1, live_only=True)
    relay = pipeline.start_relay_thread()
    wait_for(lambda: any(job.lane == BULK for job in relay.scheduler.in_flight()), timeout=60,
             message="the relay never sent a history job")

    conn.execute("INSERT INTO items VALUES (?, 'live insert', -1)", (HISTORY_ROWS + 1,))
    for key in (1500, 2995):
        conn.execute("UPDATE items SET name = 'live update' WHERE id = ?", (key,))
    conn.execute("DELETE FROM items WHERE id = 2990")
    mapping = settings.load_mapping(conn)
    collection = weaviate_client.collections.use(mapping.table("items").collection)
    table = mapping.table("items")

    def name_of(key: int) -> str | None:
        obj = collection.query.fetch_object_by_id(table.uuid_for_key((key,)))
        return None if obj is None else obj.properties["name"]

    wait_for(lambda: name_of(HISTORY_ROWS + 1) == "live insert" and name_of(1500) == name_of(2995) == "live update",
             timeout=60, message="live changes were not applied while history waited")
    assert name_of(2990) is None
    time.sleep(2.0)  # a worker that took history jobs would write hundreds of objects meanwhile
    assert collection.aggregate.over_all(total_count=True).total_count == 3  # 3001, 1500, 2995: live only
    assert progress.read_progress(conn).bulk.checkpoint == 0

    # the lanes apart: no live lag, the history queued, all of it still to go
    st = collect_status(settings)
    assert st.outbox_depth == 0 and st.oldest_unapplied_age_s is None
    assert HISTORY_ROWS - 3 <= st.bulk_backlog <= HISTORY_ROWS and st.backfill_remaining == st.bulk_backlog
    assert not st.caught_up
    env = {"S2W_SQLITE_URL": str(db), "S2W_WEAVIATE_URL": settings.weaviate_url, "S2W_REDIS_URL": settings.redis_url,
           "S2W_NAMESPACE": settings.namespace, "S2W_COLLECTION_PREFIX": settings.collection_prefix}
    out = CliRunner().invoke(main, ["status"], env=env).output
    assert "live lag          - (0 live change(s) waiting)" in out
    assert f"{st.backfill_remaining} row(s) to go, {st.bulk_backlog} queued" in out

    # live overload (here: no worker at all): the live backlog and its age show
    live_worker, = pipeline.workers
    os.killpg(live_worker.pid, signal.SIGKILL)
    live_worker.wait()
    for key in range(10, 15):
        conn.execute("UPDATE items SET qty = -qty WHERE id = ?", (key,))
    time.sleep(1.5)
    st = collect_status(settings)
    assert st.outbox_depth == 5 and st.oldest_unapplied_age_s >= 1.0
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SidecarCollector(lambda: MetricsSample.from_status(st)))
    metrics = generate_latest(registry).decode()
    assert "s2w_outbox_depth 5.0" in metrics and f"s2w_bulk_backlog {st.bulk_backlog}.0" in metrics
    assert f"s2w_backfill_rows_remaining {st.backfill_remaining}.0" in metrics
    lag = float(next(line.split()[1] for line in metrics.splitlines() if line.startswith("s2w_lag_seconds ")))
    assert lag >= 1.0
    assert "live lag          1." in CliRunner().invoke(main, ["status"], env=env).output

    pipeline.start_workers(1)
    pipeline.wait_caught_up(180)
    assert progress.read_progress(conn).bulk.checkpoint >= HISTORY_ROWS
    assert assert_stores_equal(weaviate_client, db, mapping) == HISTORY_ROWS  # one deleted, one inserted


def test_a_pass_sends_its_live_job_before_building_history_and_a_failed_history_send_hands_back_only_history(
        tmp_path, make_settings, pipeline_factory, weaviate_client, redis_url):
    """A pass's live jobs go out in a MULTI of their own before its history job is built
    (building reads and converts rows; a live change should not wait for that). When Redis
    fails between the two MULTIs, the live job stays in flight with its fence set, and only
    the history job's keys go back, owed a re-send; then everything drains to equal stores."""
    from sqlite_to_weaviate.writer.relay import Relay

    db = tmp_path / "app.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"history {i}", i) for i in range(300)])
    settings = make_settings(db, partitions=2, batch_size=50)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    assert backfill(settings, BackfillOptions(page_size=100)).done  # the history waits in the bulk lane
    conn.execute("INSERT INTO items VALUES (1000, 'live insert', -1)")
    relay = Relay(settings)  # no worker yet: the jobs wait in the queue
    client = redis.Redis.from_url(redis_url)
    real_send = relay.transport.send
    sends: list[list[str]] = []

    def send_then_lose_redis(outgoing, *, retire=()):
        sends.append([out.job.lane for out in outgoing])
        if any(out.job.lane == BULK for out in outgoing):
            raise redis.ConnectionError("Redis went away between the live and the history MULTI (injected)")
        return real_send(outgoing, retire=retire)

    try:
        relay.transport.send = send_then_lose_redis
        with pytest.raises(redis.ConnectionError):
            relay.step()
        assert sends == [[LIVE], [BULK]]  # the live job went first, alone
        live, = relay.scheduler.in_flight()
        assert live.lane == LIVE and [e.key for e in live.entries] == [(1000,)]
        assert client.get(relay.keys.fence(live.partition, LIVE)) == live.token.encode()
        assert len(relay.scheduler.owed) == settings.batch_size  # the history job's keys, owed
        relay.transport.send = real_send
        pipeline.start_workers(1)
        assert relay.drain(120)
        mapping = settings.load_mapping(conn)
        assert assert_stores_equal(weaviate_client, db, mapping) == 301
    finally:
        relay.close()
        client.close()
