"""The checkpoint only ever covers a contiguous prefix of acknowledged outbox seqs."""

from __future__ import annotations

import random
import uuid

import pytest

from sqlite_to_weaviate.writer.ledger import Ledger
from sqlite_to_weaviate.writer.partitioning import partition_of
from sqlite_to_weaviate.writer.payload import TICKET_VERSION, Ack, Delete, JobPayload, JobTicket, PayloadError


def test_checkpoint_waits_for_the_oldest_unacknowledged_seq():
    ledger = Ledger(checkpoint=10)
    for seq in (11, 12, 15, 20):
        ledger.read(seq)
    assert ledger.checkpoint == 10
    ledger.ack([12, 15, 20])  # later jobs finish first
    assert ledger.checkpoint == 10
    ledger.ack([11])
    assert ledger.checkpoint == 20
    assert ledger.unacked == 0


def test_gaps_in_seq_are_fine_and_reads_must_be_ordered():
    ledger = Ledger(checkpoint=0)
    ledger.read(5)
    with pytest.raises(ValueError):
        ledger.read(5)
    ledger.ack([5])
    assert ledger.checkpoint == 5


def test_random_ack_order_never_skips_an_unacknowledged_seq():
    rng = random.Random(1)
    for _ in range(200):
        ledger = Ledger(checkpoint=0)
        seqs = sorted(rng.sample(range(1, 1000), 50))
        for seq in seqs:
            ledger.read(seq)
        pending = set(seqs)
        order = seqs[:]
        rng.shuffle(order)
        for seq in order:
            ledger.ack([seq])
            pending.discard(seq)
            assert all(s > ledger.checkpoint for s in pending)
        assert ledger.checkpoint == seqs[-1]


def test_partition_is_stable_and_spread():
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, str(i)) for i in range(4000)]
    parts = [partition_of(i, 16) for i in ids]
    assert parts == [partition_of(i, 16) for i in ids]
    counts = [parts.count(p) for p in range(16)]
    assert min(counts) > 150  # roughly uniform


def test_ticket_payload_and_ack_round_trip():
    ticket = JobTicket(batch_id="b", namespace="ns", partitions=(3,), token="t-1", lease_seconds=30.0)
    assert JobTicket.from_json(ticket.to_json()) == ticket
    with pytest.raises(PayloadError, match=f"version 99 is not {TICKET_VERSION}"):
        JobTicket.from_json(dict(ticket.to_json(), v=99))
    with pytest.raises(PayloadError, match="version 'str'"):
        JobTicket.from_json("not a ticket")  # type: ignore[arg-type]
    several = JobTicket(batch_id="b", namespace="ns", partitions=(3, 0, 9), token="t-1", lease_seconds=30.0)
    assert JobTicket.from_json(several.to_json()).partitions == (3, 0, 9)
    for bad in ([], [3, 3], [-1], ["3"], [True], 3, list(range(5000))):
        with pytest.raises(PayloadError, match="malformed"):
            JobTicket.from_json(dict(ticket.to_json(), partitions=bad))
    stamped = JobTicket(batch_id="b", namespace="ns", partitions=(3,), token="t-1", lease_seconds=30.0,
                        redis_id="r" * 40 + "/" + "a" * 40)
    assert JobTicket.from_json(stamped.to_json()) == stamped and ticket.to_json()["redis_id"] == ""
    for bad in (None, 7, ["x"], "x" * 257):
        with pytest.raises(PayloadError, match="malformed"):
            JobTicket.from_json(dict(ticket.to_json(), redis_id=bad))
    with pytest.raises(PayloadError, match="malformed"):  # v6 tickets always name it ("" = unknown)
        JobTicket.from_json({k: v for k, v in ticket.to_json().items() if k != "redis_id"})
    with pytest.raises(PayloadError, match=f"version 5 is not {TICKET_VERSION}"):  # a relay from before v6
        JobTicket.from_json(dict(ticket.to_json(), v=5))
    payload = JobPayload(upserts=[{"uuid": "u", "collection": "C", "properties": {"a": 1, "t": "é"}, "vector": [0.5]}],
                         deletes=[Delete("C", "x", None), Delete("D", "y", "*")])
    assert JobPayload.loads(payload.dumps()) == payload
    with pytest.raises(PayloadError, match="not readable"):
        JobPayload.loads(b'{"upserts": []')
    ack = Ack(batch_id="b", partition=3, token="t-1", outcome="applied", rejected={"u": "bad"})
    assert Ack.loads(ack.dumps()) == ack


def test_workers_take_live_jobs_first_and_the_reserve_only_live_jobs():
    from sqlite_to_weaviate.writer.redis_keys import RedisKeys
    from sqlite_to_weaviate.writer.rq_worker import worker_queues

    keys = RedisKeys("ns")
    assert worker_queues("ns") == [keys.queue, keys.bulk_queue]
    assert worker_queues("ns", live_only=True) == [keys.queue]
