"""Invariant 7 for what the relay owes later: a second send of the keys of every job whose
outcome it does not know survives a relay SIGKILL, is counted as pending work by ``status``
and ``ready``, and is carried out by the next relay.

Real processes and servers throughout; each test checks that the fault happened (rows in
``_s2w_resends``, a SIGKILL exit code) before it checks equality.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time

import pytest
import redis

from sqlite_to_weaviate.operate import readiness
from sqlite_to_weaviate.store import resends
from sqlite_to_weaviate.writer.status import collect_status
from tests.integration.test_writer_pipeline import make_db, random_writes
from tests.support.pipeline import assert_stores_equal, wait_for

pytestmark = pytest.mark.integration


def assert_server_equals(server, db, mapping) -> None:
    """The test's private Weaviate node holds exactly what SQLite holds."""
    from sqlite_to_weaviate.weaviate_adapter import connect_weaviate

    client = connect_weaviate(server.url)
    try:
        assert_stores_equal(client, db, mapping)
    finally:
        client.close()


def owed(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return resends.pending(conn)[0]
    finally:
        conn.close()


def test_resend_owed_for_a_lost_job_survives_a_relay_sigkill(tmp_path, make_settings, pipeline_factory,
                                                               weaviate_client, redis_url):
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, partitions=1, batch_size=200, lease_seconds=2.0)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    zombie, = pipeline.start_workers(1)
    relay = pipeline.start_relay_process()
    client = redis.Redis.from_url(redis_url)
    conn.executemany("INSERT INTO items(id, name, qty) VALUES (?, ?, 1)", [(i, "old " + "y" * 50_000) for i in range(60)])
    wait_for(lambda: client.exists(f"{settings.namespace}:lease:0"), timeout=30, interval=0.0005,
             message="the worker never started the job")
    os.killpg(zombie.pid, signal.SIGSTOP)  # frozen holding the lease: the relay must declare the job lost
    try:
        conn.execute("UPDATE items SET name = 'new', qty = 2")
        wait_for(lambda: owed(db) >= 60, timeout=60, message="no durable re-send was recorded for the lost job")
        relay.send_signal(signal.SIGKILL)
        assert relay.wait(10) == -signal.SIGKILL
        assert owed(db) >= 60, "the promise to re-send was lost with the relay"
        st = collect_status(settings)
        assert st.resends_pending >= 60 and not st.caught_up
        assert "re-send" in " ".join(readiness(settings).reasons)
    finally:
        os.killpg(zombie.pid, signal.SIGCONT)
    pipeline.start_workers(1)
    relay = pipeline.start_relay_process()
    wait_for(lambda: owed(db) == 0, timeout=120, message="the next relay never carried out the owed re-sends")
    relay.send_signal(signal.SIGTERM)
    relay.wait(30)
    pipeline.drain()
    mapping = settings.load_mapping(conn)
    assert_stores_equal(weaviate_client, db, mapping)
    names = {o.properties["name"] for o in weaviate_client.collections.use(mapping.table("items").collection).iterator()}
    assert names == {"new"}
    assert collect_status(settings).caught_up


def test_jobs_an_earlier_relay_never_saw_finish_are_replaced_and_resent(tmp_path, make_settings, pipeline_factory,
                                                                       weaviate_client, redis_url):
    """Payload keys left in Redis by a SIGKILLed relay name the objects it may have half-written."""
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, partitions=4, batch_size=25, lease_seconds=2.0)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    random_writes(conn, random.Random(3), 300)
    relay = pipeline.start_relay_process()  # no worker: its jobs wait in the queue with their payload keys
    client = redis.Redis.from_url(redis_url)
    wait_for(lambda: len(client.keys(f"{settings.namespace}:payload:*")) >= 4, timeout=30,
             message="the relay dispatched no job")
    relay.send_signal(signal.SIGKILL)
    assert relay.wait(10) == -signal.SIGKILL
    pipeline.start_workers(2)
    second = pipeline.start_relay_thread()
    wait_for(lambda: second.stats["resends_scheduled"] > 0, timeout=30,
             message="the next relay did not treat the unacknowledged jobs as suspects")
    random_writes(conn, random.Random(4), 100)
    pipeline.stop_relay_thread()
    pipeline.drain(180)
    assert owed(db) == 0
    assert client.keys(f"{settings.namespace}:payload:*") == []
    assert_stores_equal(weaviate_client, db, settings.load_mapping(conn))


def test_failed_jobs_during_an_outage_owe_a_resend_until_applied(tmp_path, make_settings, pipeline_factory,
                                                                  weaviate_server_factory):
    """A job that failed without an answer may still land: it is re-sent, and `status` is not
    caught up until that is done."""
    server = weaviate_server_factory()
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, weaviate_url=server.url, max_retries=0, lease_seconds=2.0)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(2)
    relay = pipeline.start_relay_thread()
    random_writes(conn, random.Random(1), 100)
    pipeline.wait_caught_up(60)
    server.kill()  # SIGKILL, as a crash would
    random_writes(conn, random.Random(2), 200)
    wait_for(lambda: owed(db) > 0, timeout=60, message="no re-send was owed for jobs that failed during the outage")
    assert not collect_status(settings).caught_up
    server.start()
    pipeline.wait_caught_up(180)
    wait_for(lambda: owed(db) == 0, timeout=120, message="owed re-sends never carried out")
    pipeline.stop_relay_thread()
    assert relay.stats["retries"] + relay.stats["lost_jobs"] >= 1
    assert_server_equals(server, db, settings.load_mapping(conn))


def test_a_failed_job_keeps_its_payload_so_a_relay_that_died_before_its_ack_is_covered(
        tmp_path, make_settings, pipeline_factory, weaviate_server_factory, redis_url):
    """Found looking for one object missing after a soak: a job that failed without an answer may land,
    and its worker used to delete the payload key whatever the outcome. A relay SIGKILLed before it
    read the failure left the next relay nothing to call suspect, and no re-send after the horizon."""
    from sqlite_to_weaviate.writer.redis_keys import RedisKeys

    server = weaviate_server_factory()
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, weaviate_url=server.url, max_retries=0, lease_seconds=2.0, partitions=2,
                             batch_size=25)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    random_writes(conn, random.Random(5), 120)
    relay = pipeline.start_relay_process()  # no worker yet: its jobs wait in the queue
    client = redis.Redis.from_url(redis_url)
    pattern = f"{settings.namespace}:payload:*"
    wait_for(lambda: len(client.keys(pattern)) >= 2, timeout=30, message="the relay dispatched no job")
    relay.send_signal(signal.SIGKILL)
    assert relay.wait(10) == -signal.SIGKILL
    payloads = set(client.keys(pattern))
    server.kill()  # every job now fails without an answer
    pipeline.start_workers(1)
    wait_for(lambda: client.llen(RedisKeys(settings.namespace).acks) >= len(payloads), timeout=120,
             message="the jobs never reported back")
    assert set(client.keys(pattern)) == payloads, "a failed job's payload was deleted by its worker"
    server.start()
    second = pipeline.start_relay_thread()
    wait_for(lambda: second.stats["resends_scheduled"] > 0, timeout=30,
             message="the next relay did not treat the failed jobs' objects as suspects")
    pipeline.stop_relay_thread()
    pipeline.drain(180)
    assert owed(db) == 0
    assert client.keys(pattern) == []
    assert_server_equals(server, db, settings.load_mapping(conn))


def test_a_job_applied_after_a_retry_owes_its_keys_once_more_after_the_horizon(
        tmp_path, make_settings, pipeline_factory, weaviate_server_factory):
    """A request that timed out may be applied by the server after the retry that succeeded (a
    replace's delete landing last leaves the object missing): the ack says ``unsure``, the keys are
    settled (the checkpoint moves on) and owed one more send after the write horizon."""
    server = weaviate_server_factory()
    db = tmp_path / "app.db"
    conn = make_db(db)
    # requests time out after 2 s (a third of the lease); the server is frozen for 3.5 s
    settings = make_settings(db, weaviate_url=server.url, max_retries=4, retry_delay=0.2, lease_seconds=6.0,
                             partitions=1)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    relay = pipeline.start_relay_thread()
    random_writes(conn, random.Random(6), 50)
    pipeline.wait_caught_up(60)
    assert owed(db) == 0
    os.kill(server.pid, signal.SIGSTOP)
    try:
        conn.execute("UPDATE items SET qty = qty + 1")
        time.sleep(3.5)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    wait_for(lambda: relay.stats["unsure_jobs"] >= 1, timeout=60,
             message="no job reported that it applied after a retry")
    assert owed(db) > 0, "the unsure job's keys were not owed a re-send"
    assert relay.stats["lost_jobs"] == 0 and relay.stats["retries"] == 0  # it was applied, not handed back
    wait_for(lambda: owed(db) == 0, timeout=120, message="the re-send after the horizon was never carried out")
    pipeline.stop_relay_thread()
    assert_server_equals(server, db, settings.load_mapping(conn))
