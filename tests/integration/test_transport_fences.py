"""Take-over fencing against a real Redis: every lane an earlier run left, not just today's."""

from __future__ import annotations

from sqlite_to_weaviate.store.lanes import BULK, LIVE
from sqlite_to_weaviate.weaviate_adapter import Secret
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.signing import JobSigner
from sqlite_to_weaviate.writer.transport import Transport


def test_a_relay_with_fewer_partitions_fences_the_lanes_it_no_longer_has(redis_client, redis_namespace):
    """An earlier run had 8 partitions; this one starts with 4. That run's history job on
    partition 6 and live job in slot 7 may still be writing (a frozen worker renews its
    lease on every request while the fence names it): both are fenced, and their leases
    reported so the relay holds their keys back."""
    keys = RedisKeys(redis_namespace)
    redis_client.set(keys.fence(6, BULK), "old-run-6")
    redis_client.set(keys.lease(6, BULK), "old-run-6", px=20_000)
    redis_client.set(keys.fence(7, LIVE), "old-run-7")
    redis_client.set(keys.lease(7, LIVE), "old-run-7", px=20_000)
    redis_client.set(keys.fence(5, BULK), "old-run-5")  # ended, no lease left: fenced, nothing held
    redis_client.set(f"{redis_namespace}:fence:9:other", "not a lane of ours")
    redis_client.set(f"{redis_namespace}:fence:x", "not a number")
    redis_client.set(f"{redis_namespace}:fence:\u00b2", "a digit int() refuses")
    transport = Transport(redis_client, redis_namespace, JobSigner(Secret("k" * 32)), lease_seconds=3.0,
                          job_timeout=15, failure_ttl=60, collections=["Notes"])

    held = transport.fence_all(4, "new-run")

    for number, lane in [(p, lane) for p in range(4) for lane in (LIVE, BULK)] + [(5, BULK), (6, BULK), (7, LIVE)]:
        assert redis_client.get(keys.fence(number, lane)) == b"new-run-start", (number, lane)
    assert sorted((number, lane) for number, lane, _ in held) == [(6, BULK), (7, LIVE)]
    assert all(10 < seconds <= 20 for _, _, seconds in held)
    assert redis_client.get(f"{redis_namespace}:fence:9:other") == b"not a lane of ours"
    assert redis_client.get(f"{redis_namespace}:fence:x") == b"not a number"
    assert redis_client.get(f"{redis_namespace}:fence:\u00b2") == b"a digit int() refuses"
