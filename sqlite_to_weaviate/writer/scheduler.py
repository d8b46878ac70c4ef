"""Which change goes in which job, when a job counts as lost, and where the checkpoint is.

This is where per-key order is enforced (docs/architecture.md, invariant 4). No key is
ever carried by two jobs in flight, so two changes to one key are applied in commit
order: a key changed while its job is in flight waits until that job is acknowledged, and
the next job reads the row again. Keys hash to partitions; a partition has at most one
bulk job in flight. Live jobs gather keys of any partitions and each holds one of
``partitions`` *live slots*, so several can be in flight at once (a live job does not wait
for the previous one's acknowledgement, only its own keys do). The checkpoint of each
lane advances only over its contiguous acknowledged prefix (``writer.ledger``).

A job's partition (bulk) or slot (live) is the fence its worker checks before every
request. A job that ends without its worker's answer (lost, or a send whose outcome is
unknown) is *retired*: the relay's next pass sets its fence to a tombstone in its first
MULTI, ahead of every new job of the pass (``take_retired``), so it writes nothing more
even if the job that re-sends its keys holds another slot.

Two lanes keep live changes fresh while history streams (invariant 11, live first):

* ``LIVE``: what the app committed (the outbox the triggers write);
* ``BULK``: history and maintenance (backfill pages, verify repairs, dead-letter retries,
  drift resyncs), in their own table with their own checkpoint.

A key changed live while its history entry waits moves to the live lane: rows are read at
dispatch, so the history entry is superseded, never applied after the live change. Bulk
jobs go out only while the live lane keeps up (its backlog read, at most ``live_window``
live keys waiting): under live overload the history waits and the live backlog shows.

A job whose outcome is unknown (lost, fenced, failed without an answer, Redis wiped) has
its keys sent again at once as *suspects* (the worker deletes and re-inserts them, see
``writer.weaviate_apply``) and once more after ``horizon`` seconds, from a durable list.
Events that need something written to SQLite first return a :class:`Decision`: the relay
writes ``decision.resends`` / ``decision.dead_letters`` and only then calls
``decision.commit()``, so a crash in between leaves the old, consistent state.

Pure logic: no Redis, no SQLite, no clock of its own (``now`` is monotonic seconds,
``wall`` is Unix time, both passed in). Longer than 400 lines because it is ONE state
machine: every transition (read, dispatch, ack, lease, wipe, re-send) changes the same
partitions and ledgers, and keeping them side by side is what makes the ordering argument
checkable; the data it works on is in ``writer.partitions``. ``tests/unit/test_writer_scheduler.py`` drives it on a
fake clock through every state transition.
"""

from __future__ import annotations

import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate.retrying import backoff_delay
from sqlite_to_weaviate.writer.ledger import Ledger
from sqlite_to_weaviate.writer.partitioning import partition_of
from sqlite_to_weaviate.writer.partitions import BULK, LANES, LIVE, Change, Entry, Job, Owed, Partition

__all__ = ["BULK", "LANES", "LIVE", "Change", "Decision", "Entry", "Job", "Owed", "Partition", "Scheduler"]

RATE_WINDOW_S = 30.0  # applied keys per second are measured over this window (status, ETA)

# RQ job states the scheduler distinguishes when a job's lease is missing.
WAITING = ("queued", "deferred", "scheduled")   # no worker has it yet: not lost
RUNNING = ("started", "finished")               # a worker had it: lost once unleased for a lease


@dataclass
class Decision:
    """What an event needs written to SQLite before it may take effect.

    ``resends``: keys to record as owed at ``due``; ``dead_letters`` /
    ``cleared_letters``: rows to park or un-park; ``drop_payloads``: tokens of jobs whose
    payload the relay deletes after committing (a late worker then finds nothing).
    """

    resends: list[tuple[str, str, tuple]] = field(default_factory=list)
    due: float | None = None
    reason: str = ""
    dead_letters: list[tuple[str, str, tuple, str, str]] = field(default_factory=list)
    cleared_letters: list[str] = field(default_factory=list)
    drop_payloads: list[str] = field(default_factory=list)
    _apply: Callable[[], None] = lambda: None

    @property
    def durable(self) -> bool:
        """True when there is anything to write before :meth:`commit`."""
        return bool(self.resends or self.dead_letters or self.cleared_letters)

    def commit(self) -> None:
        self._apply()


class Scheduler:
    """Partitions, in-flight jobs, per-lane ledgers, owed re-sends and backoff (see the module docstring)."""

    def __init__(
        self,
        *,
        run_id: str,
        partitions: int,
        batch_size: int,
        lease_seconds: float,
        horizon: float,
        retry_delay: float,
        backoff_max: float,
        read_ahead: int,
        checkpoints: dict[str, int] | None = None,
        owed: Iterable[Owed] = (),
        dead_letters: Iterable[str] = (),
        live_window: int | None = None,
        bulk_window: int | None = None,
        bulk_per_pass: int = 1,
        live_linger: float = 0.1,
        new_batch_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
    ) -> None:
        self.run_id = run_id
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.horizon = horizon
        self.retry_delay = retry_delay
        self.backoff_max = backoff_max
        self.read_ahead = read_ahead
        self.live_window = live_window if live_window is not None else max(100, partitions * batch_size // 4)
        self.bulk_window = bulk_window if bulk_window is not None else max(2 * batch_size, 2 * partitions * batch_size)
        # bulk jobs built per pass: building a job reads and converts its rows in the relay's one
        # thread, so a pass never spends long on history while a live change waits for the next
        # (one job per pass keeps two workers fed many times over: a pass takes milliseconds)
        self.bulk_per_pass = bulk_per_pass
        # at most one partly filled live job per this many seconds, so a stream of app writes
        # goes out in a few jobs per second, not one job per write
        self.live_linger = live_linger
        self._live_start = 0
        self._last_partial = float("-inf")
        self._live_held = False
        self.partitions = [Partition(n) for n in range(partitions)]
        self.live_slots: list[Job | None] = [None] * partitions
        self._live_keys: dict[uuid.UUID, Job] = {}   # key -> the live job in flight carrying it
        self._retired: dict[tuple[int, str], None] = {}   # fences to tombstone, in order, once each
        self.ledgers = {lane: Ledger((checkpoints or {}).get(lane, 0)) for lane in LANES}
        self.exhausted = {lane: False for lane in LANES}
        self.owed: dict[str, Owed] = {o.object_id: o for o in owed}
        self.owed_done: list[tuple[str, float]] = []
        self.dead: set[str] = set(dead_letters)
        self.stats: Counter[str] = Counter()
        self.lag_samples: deque[float] = deque(maxlen=100_000)
        self._new_batch_id = new_batch_id
        self._tokens = 0
        self._suspects: set[str] = set()
        self._suspect_upto: dict[str, int] = {lane: 0 for lane in LANES}
        self._applied: dict[str, deque[tuple[float, int]]] = {lane: deque() for lane in LANES}

    # ------------------------------------------------------------------ reading
    def partition_of(self, object_id: uuid.UUID) -> Partition:
        return self.partitions[partition_of(object_id, len(self.partitions))]

    def live_waiting(self) -> int:
        """Live keys waiting for a job (not yet dispatched)."""
        return sum(len(p.pending[LIVE]) for p in self.partitions)

    def bulk_allowed(self) -> bool:
        """History may use capacity only while the live lane keeps up."""
        return self.exhausted[LIVE] and self.live_waiting() <= self.live_window

    def read_room(self, lane: str) -> int:
        """How many rows of ``lane`` the relay may read now."""
        if lane == LIVE:
            return max(0, self.read_ahead - self.ledgers[LIVE].unacked)
        if not self.bulk_allowed():
            return 0
        return max(0, self.bulk_window - self.ledgers[BULK].unacked)

    def read_cursor(self, lane: str) -> int:
        return self.ledgers[lane].read_cursor

    def suspect_earlier_run(self, object_ids: Iterable[str], upto: dict[str, int] | None = None) -> None:
        """Objects an earlier relay run may have half-written (its unacknowledged jobs), and,
        when Redis lost that run's jobs, every change up to ``upto`` per lane."""
        self._suspects.update(object_ids)
        for lane, seq in (upto or {}).items():
            self._suspect_upto[lane] = max(self._suspect_upto[lane], seq)

    def outbox_read(self, lane: str, seqs: list[int], changes: list[Change], *, exhausted: bool,
                    wall: float) -> Decision:
        """Rows read from ``lane``: every seq in order, and the changes of the mapped ones (a row
        of a table no longer mapped has nothing to apply and counts as acknowledged).

        Suspects of an earlier run are owed a re-send: the decision records them before they
        are queued.
        """
        queued: list[tuple[Entry, Change]] = []
        suspects: list[Entry] = []
        ledger = self.ledgers[lane]
        skipped = set(seqs) - {c.seq for c in changes}
        for change in changes:
            entry = Entry(change.table, change.key, change.object_id, {lane: [change.seq]},
                          change.ts if lane == LIVE else None)
            if change.seq <= self._suspect_upto[lane] or str(change.object_id) in self._suspects:
                entry.suspect = True
                suspects.append(entry)
            queued.append((entry, change))
        decision = self._owe(suspects, wall, "an earlier relay run did not see its job finish") if suspects else Decision()
        base = decision._apply

        def apply() -> None:
            base()
            for seq in seqs:
                ledger.read(seq)
            self.exhausted[lane] = exhausted
            ledger.ack(skipped)
            for entry, change in queued:
                self.partition_of(change.object_id).add(entry, lane)
            self._suspects.difference_update(str(e.object_id) for e in suspects)

        decision._apply = apply
        return decision

    def earlier_run_read(self) -> bool:
        """Every change an earlier run could have had in flight has been read and marked."""
        return all(self.ledgers[lane].read_cursor >= self._suspect_upto[lane] for lane in LANES)

    # ------------------------------------------------------------------ re-sends
    def _owe(self, entries: list[Entry], wall: float, reason: str) -> Decision:
        """A decision that records these keys as owed a re-send after the horizon."""
        due = wall + self.horizon
        items = [(str(e.object_id), e.table, tuple(e.key)) for e in entries]

        def apply() -> None:
            for object_id, table, key in items:
                previous = self.owed.get(object_id)
                self.owed[object_id] = Owed(object_id, table, key, max(due, previous.due if previous else 0.0), reason)
            self.stats["resends_scheduled"] += len(items)

        return Decision(resends=items, due=due, reason=reason, _apply=apply)

    def due_resends(self, wall: float, mapped: Callable[[str], bool] = lambda table: True) -> int:
        """Queue owed re-sends whose time has come (a table no longer mapped is simply done)."""
        due = [o for o in self.owed.values() if o.due <= wall]
        for owed in due:
            del self.owed[owed.object_id]
            if not mapped(owed.table):
                self.owed_done.append((owed.object_id, owed.due))
                continue
            object_id = uuid.UUID(owed.object_id)
            entry = Entry(owed.table, tuple(owed.key), object_id, {}, None, suspect=True, resend_due=owed.due)
            self.partition_of(object_id).add(entry, BULK)
        return len(due)

    def take_owed_done(self) -> list[tuple[str, float]]:
        """Applied re-sends whose rows the relay deletes (with the checkpoint); hand back on failure."""
        done, self.owed_done = self.owed_done, []
        return done

    def give_back_owed_done(self, done: list[tuple[str, float]]) -> None:
        self.owed_done = done + self.owed_done

    # ------------------------------------------------------------------ dispatch
    def take_jobs(self, now: float) -> list[Job]:
        """Live jobs first, then (while the live lane keeps up) bulk jobs; see the two helpers."""
        jobs = self._take_live(now)
        if self.bulk_allowed():
            jobs += self._take_bulk(now)
        self.stats["dispatched"] += len(jobs)
        return jobs

    def _ready(self, p: Partition, lane: str, now: float) -> bool:
        return now >= p.not_before and (lane == LIVE or p.bulk_job is None) and bool(p.pending[lane])


    def _take_live(self, now: float) -> list[Job]:
        """Live keys of every free partition, gathered into as few jobs as possible.

        Per-job cost (a queue round trip, a lease, a Weaviate request) is what a stream of
        single-row app writes pays for, so live jobs span partitions: each full batch goes
        out at once, and what is left goes as one partial job, at most one per
        ``live_linger`` seconds (a lone write after a quiet spell goes at once; under a
        steady stream each job carries what arrived in the last ``live_linger``). Each job
        takes a free live slot; a key already in a job in flight (live, or its partition's
        bulk job) waits for that job's acknowledgement. :meth:`live_hold` tells the relay
        when held keys may go.
        """
        self._live_held = False
        slots = [n for n, job in enumerate(self.live_slots) if job is None]
        if not slots:
            return []
        count = len(self.partitions)
        start, self._live_start = self._live_start, (self._live_start + 1) % count
        live_busy = self._live_keys
        jobs: list[Job] = []
        batch: list[Entry] = []
        for i in range(count):
            p = self.partitions[(start + i) % count]
            if not self._ready(p, LIVE, now):
                continue
            busy = p.busy()
            room = self.batch_size - len(batch)
            took = [entry for oid, entry in p.pending[LIVE].items()
                    if oid not in busy and oid not in live_busy][:room]
            batch.extend(took)
            if len(batch) >= self.batch_size:
                jobs.append(self._new_job(slots.pop(0), LIVE, batch, now))
                batch = []
                if not slots:
                    return jobs
        if batch:
            if now - self._last_partial >= self.live_linger:
                jobs.append(self._new_job(slots.pop(0), LIVE, batch, now))
                self._last_partial = now
            else:
                self._live_held = True
        return jobs

    def live_hold(self, now: float) -> float | None:
        """Seconds until live keys held back by the linger may go (None: none are held)."""
        if not self._live_held:
            return None
        return max(0.0, self._last_partial + self.live_linger - now)

    def _take_bulk(self, now: float) -> list[Job]:
        """One job per free partition, at most ``bulk_per_pass`` per pass."""
        jobs: list[Job] = []
        live_busy = self._live_keys
        for p in self.partitions:
            if len(jobs) >= self.bulk_per_pass:
                break
            if not self._ready(p, BULK, now):
                continue
            batch = [entry for oid, entry in p.pending[BULK].items() if oid not in live_busy][: self.batch_size]
            if batch:
                jobs.append(self._new_job(p.number, BULK, batch, now))
        return jobs

    def _new_job(self, number: int, lane: str, entries: list[Entry], now: float) -> Job:
        """Take ``entries`` out of their partitions' pending keys into a job holding partition
        (bulk) or live slot ``number``."""
        self._tokens += 1
        job = Job(f"{self.run_id}-{self._tokens}", self._new_batch_id(), (number,), lane, entries, now, now + 1.0)
        for entry in entries:
            del self.partition_of(entry.object_id).pending[lane][entry.object_id]
        if lane == LIVE:
            self.live_slots[number] = job
            self._live_keys.update((entry.object_id, job) for entry in entries)
        else:
            self.partitions[number].bulk_job = job
        return job

    def _holder(self, number: int, lane: str) -> Job | None:
        return self.live_slots[number] if lane == LIVE else self.partitions[number].bulk_job

    def take_retired(self, sending: Iterable[Job] = ()) -> list[tuple[int, str]]:
        """Fences (number, lane) of jobs that ended without an answer, for the relay's pass
        sending ``sending`` to set to a tombstone in its first MULTI, ahead of all of those
        jobs; hand them back if that MULTI fails.

        A fence now held by a job in flight that is not in this send is left alone: that job
        reached Redis with its own token (which fenced the retired one off already), or it
        did not and will itself be declared lost and retired.
        """
        sent = {id(job) for job in sending}
        retired = [(n, lane) for n, lane in self._retired
                   if (holder := self._holder(n, lane)) is None or id(holder) in sent]
        self._retired = {}
        return retired

    def give_back_retired(self, retired: list[tuple[int, str]]) -> None:
        self._retired = dict.fromkeys([*retired, *self._retired])

    def refused_at_build(self, job: Job, refused: dict[str, str]) -> Decision:
        """Rows the mapping cannot convert: dead letters now; the job goes on without them."""
        entries = [e for e in job.entries if str(e.object_id) in refused]
        decision = self._settle_decision(entries, refused, stage="mapping")
        base = decision._apply

        def apply() -> None:
            base()
            for entry in entries:
                if self._live_keys.get(entry.object_id) is job:
                    del self._live_keys[entry.object_id]
            job.entries = [e for e in job.entries if str(e.object_id) not in refused]
            if not job.entries:
                self._release(job)  # never sent: nothing to fence

        decision._apply = apply
        return decision

    def send_failed(self, jobs: list[Job], wall: float) -> Decision:
        """Enqueueing failed: Redis may or may not have taken the jobs, so they are owed a re-send."""
        return self._hand_back(jobs, wall, "dispatch failed")

    def _hand_back(self, jobs: list[Job], wall: float, reason: str) -> Decision:
        """Owe a re-send of every entry of ``jobs`` (durably first), then put their keys back."""
        decision = self._owe([e for job in jobs for e in job.entries], wall, reason)
        base = decision._apply

        def apply() -> None:
            base()
            for job in jobs:
                if self._release(job, retire=True):
                    self._requeue(job)

        decision._apply = apply
        return decision

    def _release(self, job: Job, *, retire: bool = False) -> bool:
        """Free the partition or slot ``job`` holds; False if it no longer held it. ``retire``:
        the job ended without its worker's answer, so its fence gets a tombstone."""
        number = job.partition
        if self._holder(number, job.lane) is not job:
            return False
        if job.lane == LIVE:
            self.live_slots[number] = None
            for entry in job.entries:
                if self._live_keys.get(entry.object_id) is job:
                    del self._live_keys[entry.object_id]
        else:
            self.partitions[number].bulk_job = None
        if retire:
            self._retired[(number, job.lane)] = None
        return True

    def _key_partitions(self, job: Job) -> list[Partition]:
        """The partitions of the keys ``job`` carries (they back off together when it fails)."""
        if job.lane == BULK:
            return [self.partitions[job.partition]]
        return list({id(p): p for p in (self.partition_of(e.object_id) for e in job.entries)}.values())

    def _requeue(self, job: Job) -> None:
        """A released job's keys back to the front of their partitions, as suspects."""
        by_partition: dict[int, list[Entry]] = {}
        for entry in job.entries:
            by_partition.setdefault(self.partition_of(entry.object_id).number, []).append(entry)
        for number, entries in by_partition.items():
            self.partitions[number].requeue_front(job.lane, entries, suspect=True)

    def job(self, partition: int, token: str) -> Job | None:
        """The job in flight on partition (bulk) or live slot ``partition`` with this token."""
        if not 0 <= partition < len(self.partitions):
            return None
        for lane in LANES:
            job = self._holder(partition, lane)
            if job is not None and job.token == token:
                return job
        return None

    # ------------------------------------------------------------------ outcomes
    def on_ack(self, partition: int, token: str, outcome: str, *, rejected: dict[str, str] | None = None,
               unsure: bool = False, now: float, wall: float) -> Decision | None:
        """A worker's acknowledgement; None for a job no longer in flight (its work was re-sent).

        ``unsure``: applied, but a request of the job was tried again and the first try may
        still land, after later writes of its keys: they are owed a re-send after the horizon.
        Any other outcome owes the same, and the job's payload key (which the worker left in
        Redis so that a relay dying before this ack leaves them as suspects) is deleted once
        that is committed.
        """
        job = self.job(partition, token)
        if job is None:
            self.stats["stale_acks"] += 1
            return None
        held = self._key_partitions(job)
        if outcome == "applied":
            decision = self._settle_decision(job.entries, rejected or {}, stage="weaviate")
            if unsure:
                landed = [e for e in job.entries if str(e.object_id) not in (rejected or {})]
                owed = self._owe(landed, wall, "applied after a retry: the first try may land late")
                decision.resends, decision.due, decision.reason = owed.resends, owed.due, owed.reason
            base = decision._apply

            def applied() -> None:
                base()
                if unsure:
                    owed.commit()
                    self.stats["unsure_jobs"] += 1
                self._release(job)
                for p in held:
                    p.attempts = 0
                self.stats["applied_jobs"] += 1
                self.stats["applied_changes"] += len(job.entries)

            decision._apply = applied
            return decision
        reason = "fenced" if outcome == "fenced" else f"transient: {outcome}"
        decision = self._owe(job.entries, wall, reason)
        decision.drop_payloads.append(job.token)
        base = decision._apply

        def failed() -> None:
            base()
            self._release(job)
            self._requeue(job)
            if outcome != "fenced":
                for p in held:
                    p.attempts += 1
                    p.not_before = max(p.not_before,
                                       now + backoff_delay(p.attempts, self.retry_delay, self.backoff_max))
                self.stats["retries"] += 1

        decision._apply = failed
        return decision

    def backing_off(self, job: Job, now: float) -> float:
        """Seconds until the keys of ``job`` may go out again (its key partitions' backoff)."""
        return max([0.0] + [p.not_before - now for p in self._key_partitions(job)])

    def _settle_decision(self, entries: list[Entry], rejected: dict[str, str], stage: str) -> Decision:
        letters, cleared = [], []
        for entry in entries:
            object_id = str(entry.object_id)
            reason = rejected.get(object_id)
            if reason is not None:
                letters.append((object_id, entry.table, tuple(entry.key), stage, reason))
            elif object_id in self.dead:
                cleared.append(object_id)

        def apply() -> None:
            self.dead.update(letter[0] for letter in letters)
            self.dead.difference_update(cleared)
            for lane in LANES:
                self.ledgers[lane].ack(seq for entry in entries for seq in entry.seqs.get(lane, ()))
            self.owed_done.extend((str(e.object_id), e.resend_due) for e in entries if e.resend_due is not None)
            self.stats["dead_letters"] += len(letters)

        return Decision(dead_letters=letters, cleared_letters=cleared, _apply=apply)

    def record_lag(self, entries: Iterable[Entry], wall: float) -> None:
        self.lag_samples.extend(wall - e.captured_at for e in entries if e.captured_at is not None)

    def record_applied(self, job: Job, wall: float) -> None:
        """Count a job's applied keys for the lane's rate (``rate``)."""
        window = self._applied[job.lane]
        window.append((wall, len(job.entries)))
        while window and window[0][0] < wall - RATE_WINDOW_S:
            window.popleft()

    def rate(self, lane: str, wall: float) -> float | None:
        """Keys of ``lane`` applied per second over the last ``RATE_WINDOW_S`` seconds."""
        window = [(t, n) for t, n in self._applied[lane] if t >= wall - RATE_WINDOW_S]
        if len(window) < 2:
            return None
        span = max(wall - window[0][0], 1.0)
        return round(sum(n for _, n in window) / span, 1)

    # ------------------------------------------------------------------ lost jobs
    def in_flight(self) -> list[Job]:
        """Every job in flight: the live slots' and the partitions' bulk jobs."""
        return [job for job in self.live_slots if job is not None] + [
            p.bulk_job for p in self.partitions if p.bulk_job is not None]

    def jobs_to_check(self, now: float) -> list[Job]:
        """In-flight jobs whose lease is due for a look."""
        due = [job for job in self.in_flight() if now >= job.next_check]
        for job in due:
            job.next_check = now + min(1.0, self.lease_seconds / 3)
        return due

    def on_lease(self, job: Job, holder: str | None, status: str | None, *, now: float, wall: float) -> Decision | None:
        """What the lease key (and, without it, the RQ job status) says about ``job``.

        The worker renews the lease before every request; a job neither leased nor waiting
        for a worker for a whole lease is lost (its worker died, froze or never acked).
        """
        if holder == job.token:
            job.unleased_since = None
            return None
        if status in WAITING:
            return None
        if status in RUNNING:
            if job.unleased_since is None:
                job.unleased_since = now
            if now - job.unleased_since < self.lease_seconds:
                return None
        return self.lost(job, f"job {status or 'vanished'} without acknowledgement", wall)

    def lost(self, job: Job, why: str, wall: float) -> Decision:
        """Fence ``job`` off and send its keys again (as suspects), now and after the horizon."""
        decision = self._owe(job.entries, wall, f"lost: {why}")
        decision.drop_payloads.append(job.token)
        base = decision._apply

        def apply() -> None:
            base()
            if self._release(job, retire=True):
                self._requeue(job)
            self.stats["lost_jobs"] += 1

        decision._apply = apply
        return decision

    def on_redis_wiped(self, wall: float) -> Decision:
        """Redis lost every job: all in-flight work is lost (and fenced by a new sentinel)."""
        jobs = self.in_flight()
        decision = self._hand_back(jobs, wall, "lost: redis wiped")
        base = decision._apply

        def apply() -> None:
            base()
            self.stats["lost_jobs"] += len(jobs)
            self.stats["redis_wipes"] += 1

        decision._apply = apply
        return decision

    def hold(self, partition: int, lane: str, until: float, *, layout_may_differ: bool = False) -> None:
        """An older run's job still holds the lease of ``partition``'s ``lane``: keep the keys it
        may carry idle until ``until``. A bulk job's keys are its partition's; a live slot's
        job may carry keys of every partition (and an older version's live job leased each
        partition it had keys of), so a held live lease holds them all. So does a bulk lease
        of an earlier run (``layout_may_differ``), which may have had another partition count:
        its keys hash anywhere now."""
        everywhere = lane == LIVE or layout_may_differ or partition >= len(self.partitions)
        for p in (self.partitions if everywhere else [self.partitions[partition]]):
            p.not_before = max(p.not_before, until)

    # ------------------------------------------------------------------ progress
    def checkpoints(self) -> dict[str, int]:
        return {lane: self.ledgers[lane].checkpoint for lane in LANES}

    @property
    def idle(self) -> bool:
        """Everything read is applied and nothing is owed: the relay has caught up."""
        return (
            all(self.exhausted.values()) and all(ledger.unacked == 0 for ledger in self.ledgers.values())
            and not self.owed and not self.owed_done
            and not self.in_flight() and all(not p.pending[lane] for p in self.partitions for lane in LANES)
        )

    def oldest_live_wait(self, wall: float) -> float | None:
        """Age of the oldest live change read but not applied (None when there is none)."""
        times = [e.captured_at for p in self.partitions for e in p.pending[LIVE].values() if e.captured_at]
        times += [e.captured_at for job in self.in_flight() if job.lane == LIVE for e in job.entries if e.captured_at]
        return round(wall - min(times), 3) if times else None

    def snapshot(self, now: float, wall: float) -> dict[str, Any]:
        """The in-memory view published for ``status`` and ``/metrics``."""
        return {
            "checkpoint": self.ledgers[LIVE].checkpoint, "read_cursor": self.ledgers[LIVE].read_cursor,
            "unacked": sum(ledger.unacked for ledger in self.ledgers.values()),
            "lanes": {
                lane: {"checkpoint": self.ledgers[lane].checkpoint, "read_cursor": self.ledgers[lane].read_cursor,
                       "unacked": self.ledgers[lane].unacked,
                       "pending": sum(len(p.pending[lane]) for p in self.partitions),
                       "inflight": sum(job.lane == lane for job in self.in_flight()),
                       "rate_per_s": self.rate(lane, wall)}
                for lane in LANES
            },
            "bulk_allowed": self.bulk_allowed(),
            "resweeps": len(self.owed),
            "resends_next_due_s": round(min(o.due for o in self.owed.values()) - wall, 1) if self.owed else None,
            "pending": sum(len(p.pending[lane]) for p in self.partitions for lane in LANES),
            "inflight": {
                f"{','.join(map(str, job.partitions))}{'' if job.lane == LIVE else '/bulk'}": {
                    "batch_id": job.batch_id, "lane": job.lane, "keys": len(job.entries),
                    "age_s": round(now - job.dispatched_at, 3)}
                for job in self.in_flight()
            },
            "backing_off": {str(p.number): round(p.not_before - now, 3) for p in self.partitions if p.not_before > now},
            "live_oldest_wait_s": self.oldest_live_wait(wall),
            "stats": dict(self.stats),
        }
