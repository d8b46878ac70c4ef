"""The relay's ack listener (writer/ack_listener.py) against a real Redis."""

from __future__ import annotations

import threading
import time

from sqlite_to_weaviate.writer.ack_listener import BLOCK_S, AckListener


def test_an_ack_wakes_the_relay_at_once_and_reaches_it(redis_client, redis_namespace):
    key = f"{redis_namespace}:acks"
    wake = threading.Event()
    listener = AckListener(redis_client, key, wake).start()
    try:
        time.sleep(0.05)  # the thread is blocked in its pop
        pushed = time.monotonic()
        redis_client.rpush(key, b"ack-1", b"ack-2")
        assert wake.wait(2.0)
        woke_after = time.monotonic() - pushed
        deadline = time.monotonic() + 2.0
        taken: list[bytes] = []
        while len(taken) < 2 and time.monotonic() < deadline:
            taken += listener.take()
            time.sleep(0.01)
        assert taken == [b"ack-1", b"ack-2"]  # in order, each once
        assert listener.take() == []
        assert redis_client.llen(key) == 0
        assert woke_after < BLOCK_S  # woken by the ack, not by the pop's own timeout
    finally:
        listener.stop()


def test_a_stop_ends_the_thread_within_its_timeout_and_nothing_more_is_popped(redis_client, redis_namespace):
    key = f"{redis_namespace}:acks"
    listener = AckListener(redis_client, key, threading.Event()).start()
    began = time.monotonic()
    listener.stop()
    assert time.monotonic() - began < BLOCK_S + 1.0
    assert listener._thread is not None and not listener._thread.is_alive()
    redis_client.rpush(key, b"late")
    time.sleep(BLOCK_S + 0.2)
    assert redis_client.lrange(key, 0, -1) == [b"late"]  # left for the next relay run's pass


def test_a_redis_outage_does_not_end_the_listener(redis_server_factory):
    server = redis_server_factory()
    client = server.client()
    wake = threading.Event()
    listener = AckListener(client, "outage:acks", wake).start()
    try:
        server.kill()
        time.sleep(1.0)  # the pop fails; the thread waits and tries again
        assert listener._thread is not None and listener._thread.is_alive()
        server.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.rpush("outage:acks", b"after")
                break
            except Exception:  # noqa: BLE001 - still starting
                time.sleep(0.1)
        assert wake.wait(10)
        assert listener.take() == [b"after"]
    finally:
        listener.stop()
        client.close()
