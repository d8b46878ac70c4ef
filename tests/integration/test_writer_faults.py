"""Invariant 7: SIGKILL the relay or a worker, wipe Redis, stop Weaviate, freeze a worker.

Every test injects a real fault into real processes and servers, asserts that the fault
actually happened (a crash exit code, a lost job, a retry), and ends with exact equality
between SQLite and Weaviate.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time

import pytest
import redis

from tests.integration.test_writer_pipeline import make_db, random_writes
from tests.support.pipeline import assert_stores_equal, wait_for


def _writer_thread(db, seed: int, n: int, id_space: int = 150, pause: float = 0.0) -> threading.Thread:
    def run() -> None:
        conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        rng = random.Random(seed)
        for _ in range(n // 25):
            random_writes(conn, rng, 25, id_space=id_space)
            if pause:
                time.sleep(pause)
        conn.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_sigkill_relay_mid_dispatch_and_restart(tmp_path, make_settings, pipeline_factory, weaviate_client):
    db = tmp_path / "app.db"
    make_db(db).close()
    settings = make_settings(db, batch_size=10)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(2)
    writer = _writer_thread(db, seed=11, n=1500, pause=0.01)
    kills = 0
    rng = random.Random(3)
    while writer.is_alive() or kills < 3:
        relay = pipeline.start_relay_process()
        time.sleep(rng.uniform(0.3, 1.2))
        relay.send_signal(signal.SIGKILL)
        assert relay.wait(10) == -signal.SIGKILL
        kills += 1
    writer.join()
    pipeline.drain()
    assert kills >= 3
    conn = sqlite3.connect(db)
    assert assert_stores_equal(weaviate_client, db, settings.load_mapping(conn)) > 0


def test_sigkill_worker_mid_batch(tmp_path, make_settings, pipeline_factory, weaviate_client, redis_url):
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, partitions=2, batch_size=50)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    victim, = pipeline.start_workers(1)
    relay = pipeline.start_relay_thread()
    client = redis.Redis.from_url(redis_url)
    # Freeze the only worker, so the next job is taken and held, then kill it while it holds a lease.
    big = "x" * 200_000
    killed = False
    for round_ in range(40):
        conn.executemany("INSERT OR REPLACE INTO items(id, name) VALUES (?, ?)",
                         [(i, f"{big}{round_}") for i in range(40)])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(client.exists(relay.keys.lease(p)) for p in range(settings.partitions)):
                os.killpg(victim.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.001)
        if killed:
            break
    assert killed, "never caught the worker holding a job"
    assert victim.wait(10) == -signal.SIGKILL
    pipeline.start_workers(1)
    random_writes(conn, random.Random(5), 300)
    pipeline.wait_caught_up(120)
    assert relay.stats["lost_jobs"] >= 1
    assert_stores_equal(weaviate_client, db, settings.load_mapping(conn))


def test_redis_restart_empty_resends_everything(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                 redis_server_factory):
    server = redis_server_factory()
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, redis_url=server.url, batch_size=20)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(2)
    relay = pipeline.start_relay_thread()
    writer = _writer_thread(db, seed=21, n=1200, pause=0.02)
    time.sleep(1.0)
    server.restart(keep_data=False)
    time.sleep(1.0)
    server.restart(keep_data=False)
    writer.join()
    # RQ workers may give up on a vanished Redis: start fresh ones as a supervisor (`run`) would.
    pipeline.start_workers(2)
    pipeline.wait_caught_up(40)
    assert relay.stats["redis_wipes"] >= 1
    assert_stores_equal(weaviate_client, db, settings.load_mapping(conn))


def test_weaviate_down_for_a_while(tmp_path, make_settings, pipeline_factory, weaviate_server_factory,
                                   collection_prefix):
    from sqlite_to_weaviate.weaviate_adapter import connect_weaviate

    server = weaviate_server_factory()
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, weaviate_url=server.url, max_retries=1)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(2)
    relay = pipeline.start_relay_thread()
    random_writes(conn, random.Random(1), 200)
    server.stop()
    random_writes(conn, random.Random(2), 300)  # the app keeps committing while Weaviate is down
    # workers hand jobs back while Weaviate is down
    wait_for(lambda: relay.stats["retries"] >= 1, timeout=90, interval=0.2,
             message="no job was ever handed back while Weaviate was down")
    server.start()
    random_writes(conn, random.Random(3), 200)
    pipeline.wait_caught_up(180)
    client = connect_weaviate(server.url)
    try:
        assert_stores_equal(client, db, settings.load_mapping(conn))
    finally:
        client.close()


def test_frozen_worker_cannot_overwrite_newer_data(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                   redis_url):
    """A worker SIGSTOPped inside a job past its lease wakes up fenced; newer data stays."""
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, partitions=1, batch_size=200, lease_seconds=6.0)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    zombie, = pipeline.start_workers(1)
    relay = pipeline.start_relay_thread()
    client = redis.Redis.from_url(redis_url)
    payload = "old " + "y" * 100_000
    conn.executemany("INSERT INTO items(id, name, qty) VALUES (?, ?, 1)", [(i, payload) for i in range(60)])
    wait_for(lambda: client.exists(relay.keys.lease(0)), timeout=60, interval=0.0005,
             message="the worker never started the job")  # a worker process starts slowly on a loaded machine
    os.killpg(zombie.pid, signal.SIGSTOP)
    try:
        conn.execute("UPDATE items SET name = 'new', qty = 2")  # newer state while the zombie sleeps
        pipeline.start_workers(1)
        wait_for(lambda: relay.stats["lost_jobs"] >= 1, timeout=30, message="the frozen job was never declared lost")
        pipeline.wait_caught_up(60)
    finally:
        os.killpg(zombie.pid, signal.SIGCONT)
    # the zombie woke up and reported back, fenced off
    wait_for(lambda: relay.stats["stale_acks"] >= 1, timeout=30, message="the zombie never reported back")
    pipeline.wait_caught_up(60)
    mapping = settings.load_mapping(conn)
    assert_stores_equal(weaviate_client, db, mapping)
    names = {o.properties["name"] for o in weaviate_client.collections.use(mapping.table("items").collection).iterator()}
    assert names == {"new"}


def test_two_updates_in_different_batches_never_end_older(tmp_path, make_settings, pipeline_factory, weaviate_client):
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, partitions=2, batch_size=1)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(3)
    pipeline.start_relay_thread()
    conn.execute("INSERT INTO items(id, qty) VALUES (1, 0), (2, 0)")
    for version in range(1, 301):
        conn.execute("UPDATE items SET qty = ? WHERE id IN (1, 2)", (version,))
        if version % 50 == 0:
            time.sleep(0.05)
    pipeline.wait_caught_up(120)
    mapping = settings.load_mapping(conn)
    collection = weaviate_client.collections.use(mapping.table("items").collection)
    assert sorted(o.properties["qty"] for o in collection.iterator()) == [300, 300]


def test_job_whose_payload_vanished_is_handed_back_and_resent(tmp_path, make_settings, pipeline_factory,
                                                              weaviate_client, redis_url):
    """Redis losing a job's rows (eviction, an operator's DEL) but not its ticket costs a re-send, never data."""
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, partitions=4, batch_size=25)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    random_writes(conn, random.Random(7), 400)
    relay = pipeline.start_relay_thread()  # no worker yet: the first jobs wait in the queue
    client = redis.Redis.from_url(redis_url)
    payload_keys = wait_for(lambda: client.keys(f"{settings.namespace}:payload:*") or None, timeout=30,
                            message="relay dispatched no job")
    assert client.delete(*payload_keys) == len(payload_keys)
    pipeline.start_workers(1)
    pipeline.wait_caught_up(60)
    assert relay.stats["retries"] >= len(payload_keys)  # each came back "transient: payload gone"
    assert client.keys(f"{settings.namespace}:payload:*") == []  # workers delete the rows they acked
    assert_stores_equal(weaviate_client, db, settings.load_mapping(conn))


def test_a_lost_live_job_is_fenced_off_even_when_its_keys_go_out_in_another_slot(
        tmp_path, make_settings, pipeline_factory, weaviate_client, redis_url):
    """Live jobs hold slots, not the partitions of their keys, so the job that re-sends a lost
    job's keys may hold another slot than the lost one. The lost job's fence is retired in
    the next send anyway: its worker, waking up, writes nothing."""
    from sqlite_to_weaviate.writer.job import Lease
    from sqlite_to_weaviate.writer.payload import JobTicket
    from sqlite_to_weaviate.writer.weaviate_apply import Fenced

    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, partitions=4, batch_size=50, lease_seconds=6.0)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    from sqlite_to_weaviate.writer.relay import Relay

    relay = Relay(settings)  # no worker runs: the jobs wait in the queue
    client = redis.Redis.from_url(redis_url)
    try:
        conn.execute("INSERT INTO items(id, name, qty) VALUES (1, 'one', 1)")
        relay.step()
        time.sleep(0.2)  # past the live linger, so the next change goes in a job of its own
        conn.execute("INSERT INTO items(id, name, qty) VALUES (2, 'two', 2)")
        relay.step()
        first, second = sorted(relay.scheduler.in_flight(), key=lambda job: job.partition)
        assert (first.partition, second.partition) == (0, 1)  # pipelined: two live jobs in flight at once

        def ticket(job):
            return JobTicket(batch_id=job.batch_id, namespace=settings.namespace, partitions=job.partitions,
                             token=job.token, lease_seconds=6.0, lane=job.lane,
                             redis_id=relay.transport.identity.fingerprint or "")

        Lease(client, relay.keys, ticket(second)).guard()  # its fence names it: it may write
        for job in (first, second):  # both declared lost
            relay._commit(relay.scheduler.lost(job, "test", time.time()))
        relay.scheduler.live_linger = 3600.0  # their keys wait: the tombstones go out on their own
        relay.step()
        assert relay.scheduler.in_flight() == []
        assert client.get(relay.keys.fence(0)) == client.get(relay.keys.fence(1)) == b"retired"
        relay.scheduler.live_linger = 0.0  # now their keys go out again in ONE job, in slot 0
        relay.step()
        resent, = relay.scheduler.in_flight()
        assert resent.partition == 0 and sorted(e.key for e in resent.entries) == [(1,), (2,)]
        assert client.get(relay.keys.fence(0)) == resent.token.encode()
        assert client.get(relay.keys.fence(1)) == b"retired"
        with pytest.raises(Fenced):
            Lease(client, relay.keys, ticket(second)).guard()  # slot 1's zombie writes nothing
        with pytest.raises(Fenced):
            Lease(client, relay.keys, ticket(first)).guard()   # slot 0 now belongs to the re-send
        pipeline.start_workers(1)
        assert relay.drain(60)
        assert_stores_equal(weaviate_client, db, settings.load_mapping(conn))
    finally:
        relay.close()
        client.close()
