"""The relay's scheduler on a fake clock: every state transition, and per-key order under
random interleavings of changes, acknowledgements, lost jobs, zombies and Redis wipes."""

from __future__ import annotations

import random
import uuid

import pytest

from sqlite_to_weaviate.retrying import backoff_delay
from sqlite_to_weaviate.writer.scheduler import BULK, LIVE, Change, Owed, Scheduler


def oid(n: int) -> uuid.UUID:
    """Key n's object id; its partition (high 8 bytes) is (n + 1) % partitions."""
    return uuid.UUID(int=(n + 1) << 64 | (n + 1))


def make(**kw) -> Scheduler:
    values = dict(run_id="r", partitions=1, batch_size=10, lease_seconds=3.0, horizon=20.0, retry_delay=1.0,
                  backoff_max=8.0, read_ahead=1000, live_linger=0.0)  # the linger has its own tests
    values.update(kw)
    return Scheduler(**values)


class Feed:
    """Outbox rows with increasing seqs per lane, read through the scheduler (and committed)."""

    def __init__(self, s: Scheduler) -> None:
        self.s = s
        self.seq = {LIVE: 0, BULK: 0}

    def rows(self, lane: str, keys: list[int], *, wall: float = 0.0, exhausted: bool = True, ts: float | None = None,
             unmapped: int = 0):
        changes, seqs = [], []
        for k in keys:
            self.seq[lane] += 1
            seqs.append(self.seq[lane])
            changes.append(Change(lane, self.seq[lane], "t", (k,), oid(k), ts))
        for _ in range(unmapped):
            self.seq[lane] += 1
            seqs.append(self.seq[lane])
        d = self.s.outbox_read(lane, seqs, changes, exhausted=exhausted, wall=wall)
        d.commit()
        return d


def keys_of(job) -> list[int]:
    return [e.key[0] for e in job.entries]


def test_backoff_grows_and_is_capped():
    assert [backoff_delay(a, 1.0, 5.0) for a in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_read_take_ack_advances_the_checkpoint_over_the_contiguous_prefix():
    s = make(partitions=2, batch_size=2)
    f = Feed(s)
    f.rows(BULK, [])
    f.rows(LIVE, [1, 2, 3, 4], unmapped=1)
    assert s.read_cursor(LIVE) == 5
    jobs = s.take_jobs(0.0)
    assert len({j.token for j in jobs}) == len(jobs) and all(len(j.entries) <= 2 for j in jobs)
    assert all(j.lane == LIVE for j in jobs)
    assert s.checkpoints()[LIVE] == 0  # nothing applied yet (the unmapped seq 5 is acked but not contiguous)
    for j in jobs:
        s.on_ack(j.partition, j.token, "applied", now=0.0, wall=0.0).commit()
    more = s.take_jobs(0.0)
    for j in more:
        s.on_ack(j.partition, j.token, "applied", now=0.0, wall=0.0).commit()
    assert s.checkpoints()[LIVE] == 5 and s.idle


def test_a_key_changed_while_in_flight_waits_for_the_ack_and_is_sent_again():
    s = make()
    f = Feed(s)
    f.rows(LIVE, [1, 2])
    first, = s.take_jobs(0.0)
    f.rows(LIVE, [1, 3])
    assert s.take_jobs(0.0) == []  # the live slot is busy
    s.on_ack(0, first.token, "applied", now=0.0, wall=0.0).commit()
    second, = s.take_jobs(0.0)
    assert sorted(keys_of(second)) == [1, 3]


def test_a_live_change_takes_over_the_waiting_history_of_its_key():
    s = make()
    f = Feed(s)
    f.rows(BULK, [1, 2])
    f.rows(LIVE, [1])
    jobs = {j.lane: j for j in s.take_jobs(0.0)}
    assert keys_of(jobs[LIVE]) == [1] and keys_of(jobs[BULK]) == [2]
    assert jobs[LIVE].entries[0].seqs == {BULK: [1], LIVE: [1]}
    s.on_ack(0, jobs[LIVE].token, "applied", now=0.0, wall=0.0).commit()
    assert s.checkpoints() == {LIVE: 1, BULK: 1}  # both changes of key 1 acknowledged by one write


def test_two_lanes_never_hold_the_same_key_at_once():
    s = make()
    f = Feed(s)
    f.rows(LIVE, [1])
    live, = s.take_jobs(0.0)
    f.rows(BULK, [1, 2])
    bulk, = s.take_jobs(0.0)
    assert bulk.lane == BULK and keys_of(bulk) == [2]  # key 1 waits for the live job
    s.on_ack(0, live.token, "applied", now=0.0, wall=0.0).commit()
    s.on_ack(0, bulk.token, "applied", now=0.0, wall=0.0).commit()
    again, = s.take_jobs(0.0)
    assert again.lane == BULK and keys_of(again) == [1]


def test_a_live_change_waits_while_its_history_is_in_flight():
    s = make()
    f = Feed(s)
    f.rows(LIVE, [])
    f.rows(BULK, [1, 2])
    bulk, = s.take_jobs(0.0)
    f.rows(LIVE, [1, 3])
    live, = s.take_jobs(1.0)
    assert keys_of(live) == [3]  # key 1 waits: the history job read it before this change
    s.on_ack(0, bulk.token, "applied", now=1.0, wall=1.0).commit()
    s.on_ack(0, live.token, "applied", now=1.0, wall=1.0).commit()
    again, = s.take_jobs(2.0)
    assert again.lane == LIVE and keys_of(again) == [1]


def test_live_keys_of_many_partitions_go_out_as_one_job_holding_one_slot():
    s = make(partitions=8, batch_size=50)
    f = Feed(s)
    f.rows(LIVE, list(range(20)))
    job, = s.take_jobs(0.0)
    assert len({s.partition_of(oid(k)).number for k in range(20)}) > 1
    assert sorted(keys_of(job)) == list(range(20)) and job.partitions == (0,) and s.live_slots[0] is job
    assert s.in_flight() == [job] and s.snapshot(0.0, 0.0)["lanes"][LIVE]["inflight"] == 1
    f.rows(LIVE, [0, 100])  # key 0 is in flight; key 100 goes at once, in the next slot
    more, = s.take_jobs(1.0)
    assert keys_of(more) == [100] and more.partitions == (1,) and s.job(1, more.token) is more
    s.on_ack(0, job.token, "applied", now=1.0, wall=1.0).commit()
    assert s.live_slots[0] is None and s.live_slots[1] is more
    again, = s.take_jobs(2.0)  # key 0 went out once its first job was acknowledged
    assert keys_of(again) == [0] and again.partitions == (0,)


def test_live_jobs_pipeline_up_to_one_per_slot_and_never_share_a_key():
    s = make(partitions=3, batch_size=2)
    f = Feed(s)
    f.rows(LIVE, list(range(10)))
    jobs = s.take_jobs(0.0)
    assert [j.partitions for j in jobs] == [(0,), (1,), (2,)]  # three slots, three full jobs
    assert s.take_jobs(1.0) == []  # every slot busy: the rest waits
    carried = [k for j in jobs for k in keys_of(j)]
    assert len(carried) == len(set(carried)) == 6
    f.rows(LIVE, carried[:2])  # changed again while in flight: they wait for their jobs
    s.on_ack(1, jobs[1].token, "applied", now=1.0, wall=1.0).commit()
    nxt, = s.take_jobs(2.0)
    assert nxt.partitions == (1,) and not set(keys_of(nxt)) & set(carried[:2])


def test_a_job_that_ends_unanswered_has_its_fence_retired_before_the_next_send():
    s = make(partitions=4, batch_size=50)
    f = Feed(s)
    f.rows(LIVE, [1, 2])
    f.rows(BULK, [3])
    live, bulk = s.take_jobs(0.0)
    s.on_ack(live.partition, live.token, "transient", now=0.0, wall=0.0).commit()
    assert s.take_retired() == []  # its worker answered: nothing to fence off
    again, = s.take_jobs(5.0)
    s.lost(again, "worker died", 5.0).commit()
    s.send_failed([bulk], 5.0).commit()
    retired = s.take_retired()
    assert retired == [(again.partition, LIVE), (bulk.partition, BULK)] and s.take_retired() == []
    s.give_back_retired(retired)  # that send failed: the next one carries them
    s.give_back_retired([(bulk.partition, BULK)])  # each fence once, however often handed back
    assert sorted(s.take_retired()) == sorted(retired)


def test_a_retired_fence_now_held_by_a_job_outside_the_send_is_left_alone():
    """A send that Redis carried out but reported failed, and whose hand-back could not be
    committed, leaves its job holding the slot: a later tombstone must not fence it off."""
    s = make(partitions=2, batch_size=50, live_linger=0.0)
    f = Feed(s)
    f.rows(LIVE, [1])
    lost, = s.take_jobs(0.0)
    s.lost(lost, "worker died", 0.0).commit()
    taker, = s.take_jobs(1.0)  # the re-send takes the same slot; its send "fails", uncommitted
    assert taker.partition == lost.partition
    assert s.take_retired([taker]) == [(lost.partition, LIVE)]  # in the same send: tombstone first
    s.give_back_retired([(lost.partition, LIVE)])
    assert s.take_retired([]) == []  # a later send without it leaves its fence alone


def test_partial_live_jobs_go_at_most_once_per_linger_but_full_batches_never_wait():
    s = make(partitions=4, batch_size=4, live_linger=0.5)
    f = Feed(s)
    assert s.live_hold(0.0) is None
    f.rows(LIVE, [1])
    first, = s.take_jobs(10.0)               # a lone write after a quiet spell goes at once
    s.on_ack(first.partition, first.token, "applied", now=10.1, wall=10.1).commit()
    f.rows(LIVE, [2, 3])
    assert s.take_jobs(10.2) == [] and s.live_hold(10.2) == pytest.approx(0.3)  # gathering
    f.rows(LIVE, [5])
    partial, = s.take_jobs(10.5)             # the linger has passed: everything gathered, one job
    assert sorted(keys_of(partial)) == [2, 3, 5] and s.live_hold(10.5) is None
    s.on_ack(partial.partition, partial.token, "applied", now=10.5, wall=10.5).commit()
    f.rows(LIVE, list(range(20, 30)))
    full = s.take_jobs(10.6)                 # whole batches go at once; the remainder waits
    assert len(full) == 2 and all(len(j.entries) == 4 for j in full)
    for job in full:
        s.on_ack(job.partition, job.token, "applied", now=10.7, wall=10.7).commit()
    assert s.take_jobs(10.7) == [] and s.live_hold(10.7) == pytest.approx(0.3)
    rest, = s.take_jobs(11.0)
    assert len(rest.entries) == 2


def test_a_lost_or_failed_live_job_gives_each_key_back_to_its_own_partition():
    s = make(partitions=4, batch_size=50)
    f = Feed(s)
    f.rows(LIVE, list(range(12)))
    job, = s.take_jobs(0.0)
    s.lost(job, "worker died", 0.0).commit()
    for p in s.partitions:
        assert all(s.partition_of(o) is p for o in p.pending[LIVE])
    assert s.live_slots == [None] * 4
    again, = s.take_jobs(1.0)
    assert sorted(keys_of(again)) == list(range(12)) and all(e.suspect for e in again.entries)
    s.on_ack(again.partition, again.token, "transient", now=2.0, wall=2.0).commit()
    assert all(s.partition_of(e.object_id).not_before == 3.0 for e in again.entries)  # each key's partition backs off
    assert s.take_jobs(2.5) == [] and sorted(keys_of(s.take_jobs(3.0)[0])) == list(range(12))


def test_history_waits_while_the_live_lane_is_behind():
    s = make(live_window=2)
    f = Feed(s)
    f.rows(BULK, [10, 11])
    f.rows(LIVE, [1, 2, 3], exhausted=False)  # more live rows still unread
    assert not s.bulk_allowed() and s.read_room(BULK) == 0
    jobs = s.take_jobs(0.0)
    assert [j.lane for j in jobs] == [LIVE]
    f.rows(LIVE, [], exhausted=True)
    s.on_ack(0, jobs[0].token, "applied", now=0.0, wall=0.0).commit()
    assert s.bulk_allowed() and s.read_room(BULK) > 0
    assert {j.lane for j in s.take_jobs(0.0)} == {BULK}


def test_too_many_live_keys_waiting_also_hold_back_history():
    s = make(live_window=1, batch_size=1)
    f = Feed(s)
    f.rows(BULK, [10])
    f.rows(LIVE, [1, 2, 3])
    assert s.live_waiting() == 3 and not s.bulk_allowed()


def test_a_held_lease_of_a_lane_this_run_does_not_have_holds_every_partition():
    """An earlier run had 8 partitions, this one 4: the keys of that run's bulk job on
    partition 6 now hash anywhere, so while its lease is held nothing of the lane may go."""
    own = make(partitions=4, bulk_per_pass=4)
    Feed(own).rows(LIVE, [])
    Feed(own).rows(BULK, list(range(8)))
    own.hold(1, BULK, until=5.0)  # a partition this run has: only that one waits
    assert sorted(j.partition for j in own.take_jobs(1.0)) == [0, 2, 3]

    grown = make(partitions=4, bulk_per_pass=4)  # an earlier run with 2 partitions: its partition 1 is our 1 and 3
    Feed(grown).rows(LIVE, [])
    Feed(grown).rows(BULK, list(range(8)))
    grown.hold(1, BULK, until=5.0, layout_may_differ=True)
    assert grown.take_jobs(1.0) == []

    gone = make(partitions=4, bulk_per_pass=4)
    Feed(gone).rows(LIVE, [])
    Feed(gone).rows(BULK, list(range(8)))
    gone.hold(6, BULK, until=5.0)
    assert gone.take_jobs(1.0) == []
    assert sorted(j.partition for j in gone.take_jobs(5.0)) == [0, 1, 2, 3]


def test_rejected_rows_become_dead_letters_and_clear_once_they_sync():
    s = make()
    f = Feed(s)
    f.rows(LIVE, [1, 2])
    job, = s.take_jobs(0.0)
    d = s.on_ack(0, job.token, "applied", rejected={str(oid(1)): "bad vector"}, now=0.0, wall=0.0)
    assert d.dead_letters == [(str(oid(1)), "t", (1,), "weaviate", "bad vector")] and d.durable
    d.commit()
    assert s.checkpoints()[LIVE] == 2  # a dead letter counts as handled
    f.rows(LIVE, [1])
    job, = s.take_jobs(0.0)
    d = s.on_ack(0, job.token, "applied", now=0.0, wall=0.0)
    assert d.cleared_letters == [str(oid(1))]


def test_rows_the_mapping_refuses_leave_the_job_before_it_is_sent():
    s = make()
    f = Feed(s)
    f.rows(LIVE, [1, 2])
    job, = s.take_jobs(0.0)
    d = s.refused_at_build(job, {str(oid(1)): "beyond 2^53"})
    assert d.dead_letters[0][3] == "mapping"
    d.commit()
    assert keys_of(job) == [2]
    s.on_ack(job.partition, job.token, "applied", now=0.0, wall=0.0).commit()
    f.rows(LIVE, [1, 2])  # both keys changed again: neither is still taken by the first job
    again, = s.take_jobs(1.0)
    assert sorted(keys_of(again)) == [1, 2]
    single = make()
    Feed(single).rows(BULK, [])
    Feed(single).rows(LIVE, [1])
    job, = single.take_jobs(0.0)
    single.refused_at_build(job, {str(oid(1)): "x"}).commit()
    assert single.live_slots[0] is None and single.idle


def test_a_stale_ack_changes_nothing():
    s = make()
    Feed(s).rows(LIVE, [1])
    job, = s.take_jobs(0.0)
    assert s.on_ack(0, "someone-else", "applied", now=0.0, wall=0.0) is None
    assert s.on_ack(7, job.token, "applied", now=0.0, wall=0.0) is None  # no such partition
    assert s.stats["stale_acks"] == 2 and s.live_slots[0] is job


def test_a_transient_failure_backs_off_requeues_as_suspect_and_owes_a_resend():
    s = make()
    Feed(s).rows(LIVE, [1, 2])
    job, = s.take_jobs(0.0)
    d = s.on_ack(0, job.token, "transient", now=10.0, wall=1000.0)
    assert sorted(r[0] for r in d.resends) == [str(oid(1)), str(oid(2))] and d.due == 1020.0
    d.commit()
    assert s.take_jobs(10.5) == []  # backing off 1 s
    again, = s.take_jobs(11.0)
    assert all(e.suspect for e in again.entries) and sorted(keys_of(again)) == [1, 2]
    s.on_ack(0, again.token, "transient", now=11.0, wall=1001.0).commit()
    assert s.take_jobs(12.5) == [] and s.take_jobs(13.0)  # 2 s the second time
    assert set(s.owed) == {str(oid(1)), str(oid(2))}


def test_an_uncommitted_decision_changes_nothing():
    """The relay crashed (or its SQLite write failed) between deciding and committing."""
    s = make()
    Feed(s).rows(LIVE, [1])
    job, = s.take_jobs(0.0)
    s.on_ack(0, job.token, "transient", now=0.0, wall=0.0)   # never committed
    s.lost(job, "lease expired", 0.0)                        # never committed
    s.on_redis_wiped(0.0)                                    # never committed
    assert s.live_slots[0] is job and not s.owed and s.stats["lost_jobs"] == 0


def test_a_fenced_job_is_resent_without_backoff():
    s = make()
    Feed(s).rows(LIVE, [1])
    job, = s.take_jobs(0.0)
    s.on_ack(0, job.token, "fenced", now=0.0, wall=0.0).commit()
    again, = s.take_jobs(0.0)
    assert again.entries[0].suspect and str(oid(1)) in s.owed


@pytest.mark.parametrize("status, lost_after", [(None, 0.0), ("started", 3.0), ("finished", 3.0), ("queued", None)])
def test_a_job_without_its_lease_is_lost_only_when_no_worker_can_still_hold_it(status, lost_after):
    s = make()
    Feed(s).rows(LIVE, [1])
    job, = s.take_jobs(0.0)
    assert s.jobs_to_check(0.5) == [] and s.jobs_to_check(1.0) == [job]
    assert s.on_lease(job, job.token, "started", now=1.0, wall=0.0) is None  # leased: fine
    first = s.on_lease(job, None, status, now=2.0, wall=0.0)
    if lost_after is None:
        assert first is None and s.on_lease(job, None, status, now=500.0, wall=0.0) is None
        return
    if lost_after:
        assert first is None
        assert s.on_lease(job, None, status, now=2.0 + lost_after - 0.1, wall=0.0) is None
        first = s.on_lease(job, None, status, now=2.0 + lost_after, wall=0.0)
    assert first.drop_payloads == [job.token] and first.resends
    first.commit()
    again, = s.take_jobs(10.0)
    assert again.entries[0].suspect and s.stats["lost_jobs"] == 1


def test_an_applied_ack_after_a_retry_settles_the_keys_and_owes_them_once_more_after_the_horizon():
    s = make(batch_size=10, horizon=20.0)
    Feed(s).rows(LIVE, [1, 2, 3])
    job, = s.take_jobs(0.0)
    d = s.on_ack(0, job.token, "applied", rejected={str(oid(3)): "bad value"}, unsure=True, now=1.0, wall=100.0)
    assert sorted(r[2] for r in d.resends) == [(1,), (2,)] and d.due == 120.0  # not the refused row
    assert not d.drop_payloads  # the worker deleted it: the job is known applied
    d.commit()
    assert s.checkpoints()[LIVE] == 3 and s.in_flight() == []  # applied: the checkpoint moves on
    assert s.stats["unsure_jobs"] == 1 and s.due_resends(119.0) == 0
    assert s.due_resends(120.0) == 2
    again, = s.take_jobs(2.0)
    assert sorted(keys_of(again)) == [1, 2] and all(e.suspect for e in again.entries)


def test_a_sure_applied_ack_owes_nothing_and_a_failed_one_deletes_its_payload_after_owing():
    s = make(batch_size=10)
    feed = Feed(s)
    feed.rows(LIVE, [1])
    job, = s.take_jobs(0.0)
    d = s.on_ack(0, job.token, "applied", now=0.0, wall=0.0)
    assert not d.resends and not d.drop_payloads
    d.commit()
    feed.rows(LIVE, [2])
    job, = s.take_jobs(0.0)
    for outcome in ("transient", "fenced"):
        d = s.on_ack(0, job.token, outcome, now=0.0, wall=0.0)
        assert d.resends and d.drop_payloads == [job.token]  # deleted by the relay, after the commit
        d.commit()
        job, = s.take_jobs(50.0)


def test_a_redis_wipe_loses_every_job_in_flight():
    s = make(partitions=4, batch_size=1)
    Feed(s).rows(LIVE, list(range(8)))
    jobs = s.take_jobs(0.0)
    d = s.on_redis_wiped(0.0)
    assert len(d.resends) == len(jobs)
    d.commit()
    assert s.in_flight() == [] and s.stats["redis_wipes"] == 1


def test_owed_resends_come_due_as_suspect_history_and_are_cleared_once_applied():
    s = make(owed=[Owed(str(oid(1)), "t", (1,), 100.0), Owed(str(oid(2)), "gone", (2,), 100.0)])
    Feed(s).rows(LIVE, [])
    Feed(s).rows(BULK, [])
    assert not s.idle
    assert s.due_resends(99.0) == 0
    assert s.due_resends(100.0, mapped=lambda table: table == "t") == 2
    assert s.take_owed_done() == [(str(oid(2)), 100.0)]  # its table is no longer mapped
    job, = s.take_jobs(0.0)
    assert job.lane == BULK and job.entries[0].suspect and job.entries[0].resend_due == 100.0
    s.on_ack(0, job.token, "applied", now=0.0, wall=0.0).commit()
    done = s.take_owed_done()
    assert done == [(str(oid(1)), 100.0)]
    s.give_back_owed_done(done)  # the relay's SQLite write failed: kept for the next try
    assert not s.idle and s.take_owed_done() == done and s.idle


def test_a_dispatch_that_failed_is_requeued_and_owed():
    s = make()
    Feed(s).rows(LIVE, [1])
    job, = s.take_jobs(0.0)
    s.send_failed([job], 0.0).commit()
    again, = s.take_jobs(0.0)
    assert again.entries[0].suspect and str(oid(1)) in s.owed


def test_objects_of_an_earlier_run_are_suspects_and_owed():
    s = make()
    s.suspect_earlier_run([str(oid(5))], upto={LIVE: 2})
    f = Feed(s)
    d = f.rows(LIVE, [1, 2, 3, 5])  # seqs 1..4: 1 and 2 under upto, key 5 named by a payload
    assert sorted(r[0] for r in d.resends) == sorted(str(oid(k)) for k in (1, 2, 5))
    job, = s.take_jobs(0.0)
    assert {e.key[0] for e in job.entries if e.suspect} == {1, 2, 5}
    assert s.earlier_run_read()


def test_a_new_scheduler_rebuilt_from_durable_state_resumes():
    """Crash: only the checkpoints, the owed re-sends and the dead letters survive."""
    s = make()
    f = Feed(s)
    f.rows(LIVE, [1, 2, 3])
    job, = s.take_jobs(0.0)
    s.on_ack(0, job.token, "transient", now=0.0, wall=0.0).commit()
    rebuilt = make(checkpoints=s.checkpoints(), owed=list(s.owed.values()), dead_letters=s.dead)
    assert rebuilt.read_cursor(LIVE) == 0 and set(rebuilt.owed) == set(s.owed)


def test_the_snapshot_names_lanes_and_the_oldest_live_wait():
    s = make()
    Feed(s).rows(LIVE, [1], ts=95.0)
    snap = s.snapshot(0.0, 100.0)
    assert snap["lanes"][LIVE]["pending"] == 1 and snap["live_oldest_wait_s"] == 5.0
    job, = s.take_jobs(0.0)
    s.record_lag(job.entries, 101.0)
    assert list(s.lag_samples) == [6.0]


# ---------------------------------------------------------------------- a model of the world
@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("linger", [0.05, 2.0])
def test_per_key_order_holds_under_random_interleavings(seed, linger):
    """Rows change, jobs are applied late, lost (their zombie write lands at any time within the
    horizon), fenced, failed, or wiped with Redis. Once everything is applied and every owed
    re-send has come due and landed, Weaviate holds the last version of every row."""
    rng = random.Random(seed)
    horizon = 30.0
    s = make(partitions=3, batch_size=3, horizon=horizon, lease_seconds=3.0, live_window=4, live_linger=linger)
    rows: dict[int, int] = {}          # key -> current version in SQLite
    weaviate: dict[int, int] = {}      # key -> version last written
    read_at_dispatch: dict[str, dict[int, int]] = {}
    zombies: list[tuple[float, dict[int, int]]] = []  # (lands at, writes)
    f = Feed(s)
    now = wall = 0.0

    def write(images: dict[int, int]) -> None:
        for k, v in images.items():
            weaviate[k] = v

    for _ in range(300):
        now += rng.uniform(0.05, 1.0)
        wall = now
        for at, images in [z for z in zombies if z[0] <= now]:
            write(images)
        zombies = [z for z in zombies if z[0] > now]
        action = rng.random()
        if action < 0.35:
            lane = LIVE if rng.random() < 0.7 else BULK
            keys = [rng.randrange(6) for _ in range(rng.randint(1, 3))]
            if lane == LIVE:
                for k in keys:
                    rows[k] = rows.get(k, 0) + 1
            f.rows(lane, keys, wall=wall, exhausted=rng.random() < 0.8, ts=wall)
        s.due_resends(wall)
        for job in s.take_jobs(now):
            read_at_dispatch[job.token] = {e.key[0]: rows.get(e.key[0], 0) for e in job.entries}
        held = [k for job in s.in_flight() for k in keys_of(job)]
        assert len(held) == len(set(held)), "two jobs in flight hold one key"
        flying = s.in_flight()
        for job in rng.sample(flying, len(flying)):  # jobs in flight finish in any order
            fate = rng.random()
            images = read_at_dispatch[job.token]
            if fate < 0.45:
                write(images)
                s.on_ack(job.partition, job.token, "applied", now=now, wall=wall).commit()
            elif fate < 0.52:
                zombies.append((now + rng.uniform(0, horizon - 1), images))  # may land later
                s.lost(job, "test", wall).commit()
            elif fate < 0.57:
                if rng.random() < 0.5:
                    zombies.append((now + rng.uniform(0, horizon - 1), images))
                s.on_ack(job.partition, job.token, rng.choice(["fenced", "transient"]), now=now, wall=wall).commit()
        if rng.random() < 0.01:
            for job in s.in_flight():
                zombies.append((now + rng.uniform(0, horizon - 1), read_at_dispatch[job.token]))
            s.on_redis_wiped(wall).commit()
    # writes stop; everything drains
    f.rows(LIVE, [], wall=wall, exhausted=True)
    f.rows(BULK, [], wall=wall, exhausted=True)
    for _ in range(10_000):
        if s.idle and not zombies:
            break
        now += 0.5
        wall = now
        for at, images in [z for z in zombies if z[0] <= now]:
            write(images)
        zombies = [z for z in zombies if z[0] > now]
        s.due_resends(wall)
        for job in s.in_flight():  # jobs still in flight land, late, with what they read at dispatch
            write(read_at_dispatch[job.token])
            s.on_ack(job.partition, job.token, "applied", now=now, wall=wall).commit()
        for job in s.take_jobs(now):
            write({e.key[0]: rows.get(e.key[0], 0) for e in job.entries})
            s.on_ack(job.partition, job.token, "applied", now=now, wall=wall).commit()
        s.take_owed_done()
    assert s.idle and not zombies
    assert {k: v for k, v in weaviate.items() if k in rows} == rows
