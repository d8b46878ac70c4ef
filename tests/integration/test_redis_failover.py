"""Redis that survives a node: a real primary, a replica and three real sentinels
(``redis-server <conf> --sentinel``), the pipeline connected through a ``redis+sentinel://`` URL.

A failover during replay must end with SQLite and Weaviate equal, with the same worker
processes still serving; a failover that lost writes the old primary had acknowledged
must be treated like a wipe (and so must any change of the Redis the relay talks to).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time

import pytest

from sqlite_to_weaviate.local.redis_sentinel import RedisSentinelSet
from sqlite_to_weaviate.redis_adapter import connect_redis
from sqlite_to_weaviate.writer.job import Lease
from sqlite_to_weaviate.writer.payload import JobTicket
from sqlite_to_weaviate.writer.redis_identity import read_identity
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.weaviate_apply import Fenced
from tests.integration.test_writer_pipeline import make_db, random_writes
from tests.support.pipeline import assert_stores_equal_soon, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinel_set(tmp_path):
    servers = RedisSentinelSet(tmp_path / "sentinel-set").start()
    try:
        yield servers
    finally:
        servers.stop()


def _writer(db, seed: int, rounds: int, pause: float) -> threading.Thread:
    def run() -> None:
        conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        rng = random.Random(seed)
        for _ in range(rounds):
            random_writes(conn, rng, 20)
            time.sleep(pause)
        conn.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_sentinel_failover_during_replay_ends_equal(tmp_path, sentinel_set, make_settings, pipeline_factory,
                                                    weaviate_client):
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, redis_url=sentinel_set.url)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    workers = pipeline.start_workers(2)
    relay = pipeline.start_relay_thread()
    writer = _writer(db, seed=1, rounds=60, pause=0.05)
    wait_for(lambda: relay.stats["applied_jobs"] >= 5, timeout=60, message="nothing applied before the failover")
    old = sentinel_set.primary_port()
    sentinel_set.server_on(old).kill()  # SIGKILL the primary mid-replay
    new = sentinel_set.wait_for_new_primary(old)
    applied_at_failover = relay.stats["applied_jobs"]
    writer.join()
    pipeline.wait_caught_up(120)
    assert new.port != old
    assert relay.stats["redis_failovers"] >= 1  # the promoted replica is another data set: treated as a wipe
    assert relay.stats["applied_jobs"] > applied_at_failover
    assert all(w.poll() is None for w in workers), "a worker exited on the failover instead of reconnecting"
    assert_stores_equal_soon(weaviate_client, db, settings.load_mapping(conn))


def test_failover_that_lost_acknowledged_writes_is_treated_like_a_wipe(tmp_path, sentinel_set, make_settings,
                                                                       pipeline_factory, weaviate_client):
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, redis_url=sentinel_set.url)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    workers = pipeline.start_workers(2)
    relay = pipeline.start_relay_thread()
    random_writes(conn, random.Random(2), 200)
    pipeline.wait_caught_up(60)

    old = sentinel_set.primary_port()
    primary = connect_redis(sentinel_set.url)
    replica = next(s for s in sentinel_set.servers if s.port != old)
    os.kill(replica.pid, signal.SIGSTOP)  # replication stalls: the primary acknowledges what the replica never gets
    try:
        for k in range(80):  # more than the socket buffers hold, so nothing after this reaches the replica
            primary.set(f"filler{k}", b"x" * 1_000_000)
        primary.set("acknowledged-then-lost", "1")
        dispatched = relay.stats["dispatched"]
        random_writes(conn, random.Random(3), 300)  # the pipeline keeps dispatching and acknowledging meanwhile
        pipeline.wait_caught_up(60)  # (live jobs span partitions: a few jobs carry all 300 changes)
        assert relay.stats["dispatched"] > dispatched, "the relay dispatched nothing while the replica was frozen"
        sentinel_set.server_on(old).kill()
    finally:
        os.kill(replica.pid, signal.SIGCONT)
    sentinel_set.wait_for_new_primary(old)
    random_writes(conn, random.Random(4), 200)
    pipeline.wait_caught_up(120)
    assert primary.get("acknowledged-then-lost") is None, "the failover lost nothing: the test did not test"
    assert relay.stats["redis_failovers"] >= 1
    assert all(w.poll() is None for w in workers)
    assert_stores_equal_soon(weaviate_client, db, settings.load_mapping(conn))


def test_an_interrupted_read_never_hands_its_reply_to_the_next_command(sentinel_set):
    # RQ stops a worker by raising from its SIGTERM handler, often inside a blocking BLPOP;
    # a job timeout raises inside any command. The next command must get its own reply.
    client = connect_redis(sentinel_set.url)
    client.set("probe", "value")

    def interrupt(signum, frame):
        raise KeyboardInterrupt("interrupted mid-read")

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            client.blpop(["never-pushed"], timeout=3)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    client.rpush("never-pushed", "late")  # would complete the abandoned BLPOP on a kept connection
    assert client.ping() is True
    assert client.get("probe") == b"value"
    assert client.lrange("never-pushed", 0, -1) == [b"late"]  # nobody popped it
    client.close()


def test_a_job_dispatched_to_a_replaced_redis_writes_nothing(redis_server_factory):
    server = redis_server_factory()
    client = server.client()
    keys = RedisKeys("fence-test")
    identity = read_identity(client)
    assert identity is not None
    # "": a relay whose Redis refused INFO stamps nothing, and nothing is checked
    for redis_id, fenced in ((identity.fingerprint, False), ("another-run-id/another-replid", True), ("", False)):
        ticket = JobTicket(batch_id="b", namespace=keys.namespace, partitions=(0, 5), token=f"t-{fenced}-{redis_id}",
                           lease_seconds=5.0, redis_id=redis_id)
        for partition in ticket.partitions:  # the fences themselves say: this job may write
            client.set(keys.fence(partition, ticket.lane), ticket.token)
        lease = Lease(client, keys, ticket)
        if fenced:
            with pytest.raises(Fenced, match="Redis was replaced"):
                lease.guard()
        else:
            lease.guard()
    client.close()


def test_redis_restart_keeping_its_data_is_treated_like_a_wipe(tmp_path, redis_server_factory, make_settings,
                                                               pipeline_factory, weaviate_client):
    # The sentinel key survives a restart from a snapshot, but anything written after the
    # snapshot would not: a new run_id is a new data set.
    server = redis_server_factory()
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, redis_url=server.url)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    from sqlite_to_weaviate.writer.relay import Relay

    relay = Relay(settings)
    try:
        random_writes(conn, random.Random(9), 100)
        relay.step()
        relay.step()
        assert relay.scheduler.in_flight()  # no worker yet: jobs wait in the queue
        server.restart(keep_data=True)
        relay.step()
        assert relay.stats["redis_failovers"] == 1
        assert relay.stats["redis_wipes"] == 1 and relay.stats["lost_jobs"] >= 1
        pipeline.start_workers(1)
        assert relay.drain(120)
    finally:
        relay.close()
    assert_stores_equal_soon(weaviate_client, db, settings.load_mapping(conn))


def test_a_redis_that_refuses_info_still_replays_everything(tmp_path, redis_server_factory, make_settings,
                                                            pipeline_factory, weaviate_client):
    # Some managed services rename INFO away. Failover detection is then off (logged once);
    # the relay's glance and the workers' lease guard read INFO in the same round trip as the
    # sentinel, the acks and the fences, so a refused INFO must not fail the rest with it.
    import redis as redis_lib

    from sqlite_to_weaviate.writer.relay import Relay

    server = redis_server_factory(extra_args=("--rename-command", "INFO", ""))
    client = server.client()
    with pytest.raises(redis_lib.ResponseError):
        client.info()
    keys = RedisKeys("refuses-info")
    # a job stamped with an identity (dispatched before INFO went away) is not fenced for it
    ticket = JobTicket(batch_id="b", namespace=keys.namespace, partitions=(3,), token="t-1", lease_seconds=5.0,
                       redis_id="some-run-id/some-replid")
    client.set(keys.fence(3, ticket.lane), ticket.token)
    Lease(client, keys, ticket).guard()
    assert client.get(keys.lease(3, ticket.lane)) == b"t-1"  # renewed in the same round trip
    client.set(keys.fence(3, ticket.lane), "retired")
    with pytest.raises(Fenced, match="now belongs to"):
        Lease(client, keys, ticket).guard()
    client.close()

    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = make_settings(db, redis_url=server.url)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    relay = Relay(settings)
    try:
        random_writes(conn, random.Random(11), 150)
        assert relay.drain(120)
        assert not relay.transport.identity.available and relay.transport.identity.fingerprint is None
        assert relay.stats["dispatched"] >= 1
    finally:
        relay.close()
    assert_stores_equal_soon(weaviate_client, db, settings.load_mapping(conn))
