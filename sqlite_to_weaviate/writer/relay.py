"""The relay loop: read the lanes, dispatch jobs, collect outcomes, persist the checkpoints.

One relay runs per database (a file lock next to it makes a second one fail fast). Each
pass: notice a Redis wipe, take acknowledgements, declare jobs of dead or frozen workers
lost, queue owed re-sends that came due, read the live lane (and the bulk lane when the
live lane keeps up), build and send the next jobs, and persist both checkpoints (pruning
the lanes below them). The decisions are the scheduler's (``writer.scheduler``, pure
logic); Redis is the transport's (``writer.transport``); rows become objects in
``writer.rows_to_objects``; schema drift is followed by ``writer.drift_follower``, and
collection versions (embeddings rebuild/switch/drop) by ``writer.version_watch``.

All of the relay's memory can be lost at any moment: it rebuilds from SQLite (the
checkpoints, the owed re-sends, the dead letters). Anything that must happen later is
written there before the relay moves on: every decision with durable effects is committed
to SQLite first and only then applied in memory. See docs/architecture.md for the
argument that this keeps invariants 1-7 and 11. Longer than 400 lines because every step
of the pass is here with its own failure handling (what is committed first, what is
handed back); the decisions themselves are the scheduler's.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections import Counter
from typing import Any

import redis

from sqlite_to_weaviate.logs import get_logger, new_correlation_id
from sqlite_to_weaviate.mapping import Mapping, MappingError
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.store import dead_letters, lanes, progress, resends
from sqlite_to_weaviate.store.lanes import BULK, LANES, LIVE
from sqlite_to_weaviate.store.state import StateKey, ensure_state_table, get_state, set_state
from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.writer.ack_listener import AckListener
from sqlite_to_weaviate.writer.drift_follower import CHECK_INTERVAL as DRIFT_CHECK_INTERVAL
from sqlite_to_weaviate.writer.drift_follower import DriftFollower
from sqlite_to_weaviate.writer.job import write_horizon
from sqlite_to_weaviate.writer.job_secret import relay_job_secret
from sqlite_to_weaviate.writer.partitions import Job
from sqlite_to_weaviate.writer.relay_lock import RelayLock
from sqlite_to_weaviate.writer.rows_to_objects import build_payloads
from sqlite_to_weaviate.writer.scheduler import Change, Decision, Owed, Scheduler
from sqlite_to_weaviate.writer.signing import JobSigner
from sqlite_to_weaviate.writer.stuck import StreakRecorder
from sqlite_to_weaviate.writer.transport import Outgoing, Transport
from sqlite_to_weaviate.writer.version_watch import VersionWatch
from sqlite_to_weaviate.writer.wake import DatabaseWatcher

READ_CHUNK = 5000
# History read per pass: each row costs its identity (a sha1) in this thread, and a live
# change committed meanwhile waits for the pass to end; a few jobs' worth keeps up.
BULK_READ_CHUNK = 1000
CHECKPOINT_INTERVAL = 0.5
STATUS_INTERVAL = 1.0
ACK_WAIT_S = 0.05  # with jobs in flight, the longest the relay blocks waiting for an ack
QUIET_AFTER_S = 1.0  # the file watcher rests once the relay has not slept on it for this long
# Failures the relay outlives by backing off: Redis down, the database busy beyond the busy
# timeout, the file system hiccuping. Anything else is a bug and stops the relay loudly.
TRANSIENT_ERRORS = (redis.RedisError, sqlite3.OperationalError, OSError)


class Relay:
    """Keeps the workers busy, live changes first (the live slots, then each partition's history)."""

    def __init__(self, settings: Settings, *, mapping: Mapping | None = None) -> None:
        self.settings = settings
        self.run_id = uuid.uuid4().hex[:12]
        self.log = get_logger("s2w.relay", run_id=self.run_id)
        self.conn = settings.open_db()
        self.conn.row_factory = None
        self.mapping = mapping if mapping is not None else settings.load_mapping(self.conn)
        with immediate(self.conn):
            ensure_state_table(self.conn)
            dead_letters.ensure_table(self.conn)
            resends.ensure_table(self.conn)
            lanes.ensure_bulk(self.conn)
        # Redis is untrusted (invariant 10): tickets are signed, acks verified (writer/signing.py).
        signer = JobSigner(relay_job_secret(settings.job_secret, self.conn))
        self.transport = Transport(
            settings.connect_redis(), settings.namespace, signer, lease_seconds=settings.lease_seconds,
            job_timeout=settings.job_timeout, failure_ttl=settings.failure_ttl,
            collections=self.mapping.write_collections(),  # every version of a versioned table
        )
        self.keys = self.transport.keys
        checkpoints = {lane: progress.checkpoint(self.conn, lane) for lane in LANES}
        self.scheduler = Scheduler(
            run_id=self.run_id, partitions=settings.partitions, batch_size=settings.batch_size,
            lease_seconds=settings.lease_seconds, horizon=write_horizon(settings.lease_seconds),
            retry_delay=settings.retry_delay, backoff_max=settings.backoff_max, read_ahead=settings.read_ahead,
            checkpoints=checkpoints, dead_letters=dead_letters.uuids(self.conn), new_batch_id=new_correlation_id,
            owed=[Owed(r.object_id, r.table, tuple(r.key), r.due, r.reason) for r in resends.load(self.conn)],
        )
        self.drift = DriftFollower(settings, self.conn, on_error=lambda m: self._note_error(m, DRIFT_CHECK_INTERVAL))
        # embedder vectors: the collection versions each change is written to (embeddings rebuild/switch/drop)
        self.versions = VersionWatch(settings, self.conn, self.mapping, on_error=lambda m: self._note_error(m, 1.0))
        self._persisted = dict(checkpoints)
        self._started = False
        self._earlier_payloads: list[bytes] = []
        self._earlier_marks: dict[str, int] = {}
        self._last_persist = 0.0
        self._last_status = 0.0
        self._last_error: str | None = None
        self._error_streak = StreakRecorder()
        self._lock = RelayLock(settings.sqlite_path)
        self._wake = threading.Event()
        self._watcher: DatabaseWatcher | None = None  # set while run() watches the database
        self._listener: AckListener | None = None  # set while run() listens for acks in a thread
        self._slept_on_watcher = time.monotonic()
        self._stop = threading.Event()
        self._extra: dict[str, int] = {}

    # ----------------------------------------------------------------- what others read
    @property
    def stats(self) -> Counter[str]:
        """Counters since start (0 for any never counted): the scheduler's plus the relay's own."""
        counts = Counter(self.scheduler.stats)
        counts.update(self._extra)
        counts.update(forged_acks=self.transport.forged_acks, drift_repairs=self.drift.repairs)
        return counts

    @property
    def lag_samples(self) -> Any:
        """commit -> applied delay of recent live changes (seconds), for metrics and benches."""
        return self.scheduler.lag_samples

    @property
    def checkpoints(self) -> dict[str, int]:
        return self.scheduler.checkpoints()

    @property
    def idle(self) -> bool:
        return self.scheduler.idle

    # ----------------------------------------------------------------- lifecycle
    def stop(self) -> None:
        """Ask :meth:`run` to return after the current pass (signal-handler safe)."""
        self._stop.set()
        self._wake.set()

    def close(self) -> None:
        self._lock.release()
        try:
            self.transport.close()
        finally:
            self.conn.close()

    def run(self, *, watch: bool = True) -> None:
        """Run until :meth:`stop`; survives Redis/Weaviate outages with exponential backoff."""
        self._lock.acquire()
        self._watcher = DatabaseWatcher(self.settings.sqlite_path, self._wake).start() if watch else None
        self._listener = AckListener(self.transport.redis, self.keys.acks, self._wake).start()
        backoff = 0.0
        self.log.info("relay started", database=str(self.settings.sqlite_path), checkpoints=self.checkpoints,
                      partitions=self.settings.partitions, namespace=self.settings.namespace)
        try:
            while not self._stop.is_set():
                try:
                    busy = self.step()
                    backoff = 0.0
                    self._idle_wait(busy)
                except TRANSIENT_ERRORS as exc:
                    backoff = min(self.settings.backoff_max, max(self.settings.retry_delay, backoff * 2))
                    self._note_error(f"{type(exc).__name__}: {exc}", backoff)
                    self._stop.wait(backoff)
        finally:
            if self._watcher is not None:
                self._watcher.stop()
                self._watcher = None
            listener, self._listener = self._listener, None
            listener.stop()
            try:
                for ack in self.transport.open_acks(listener.take()):  # popped after the last pass
                    self._on_ack(ack)
                self._persist(force=True)
            except Exception as exc:  # noqa: BLE001 - best effort on the way out; durable state is consistent
                self.log.warning("final checkpoint not written", error=str(exc))
            self.log.info("relay stopped", checkpoints=self.checkpoints)
            self._lock.release()

    def drain(self, timeout: float = 60.0) -> bool:
        """Run passes until everything captured so far is applied and nothing is owed."""
        deadline = time.monotonic() + timeout
        with_lock = not self._lock.held
        if with_lock:
            self._lock.acquire()
        try:
            while time.monotonic() < deadline:
                try:
                    busy = self.step()
                    if self.idle:
                        self._persist(force=True)
                        return True
                    self._idle_wait(busy)
                except TRANSIENT_ERRORS as exc:
                    self._note_error(f"{type(exc).__name__}: {exc}", self.settings.retry_delay)
                    time.sleep(self.settings.retry_delay)
            return False
        finally:
            if with_lock:
                self._lock.release()

    def _idle_wait(self, busy: bool) -> None:
        """Sleep until there may be work: on the acks while jobs are in flight (at most
        ``ACK_WAIT_S``), else on the file watcher's event (at most the poll interval)."""
        if busy:
            self._rest_watcher()
            return
        held = self.scheduler.live_hold(time.monotonic())  # live keys gathering for their job
        if self.scheduler.in_flight():
            self._rest_watcher()
            timeout = max(0.01, min(ACK_WAIT_S, held if held is not None else ACK_WAIT_S))
            if self._listener is not None:  # an ack sets the event too (writer/ack_listener.py)
                self._wake.wait(timeout)
                self._wake.clear()
            else:
                for ack in self.transport.wait_ack(timeout):
                    self._on_ack(ack)
            return
        if self._watcher is not None and self._watcher.listen():
            self._slept_on_watcher = time.monotonic()  # not quieted again by the pass this costs
            return  # it rested: a commit since then raised no event, so look once more first
        wait = self.settings.poll_interval if not self.scheduler.owed else min(self.settings.poll_interval, 0.2)
        if held is not None:
            wait = min(wait, held)
        self._wake.wait(wait)
        self._wake.clear()
        self._slept_on_watcher = time.monotonic()  # rest only after QUIET_AFTER_S awake

    def _rest_watcher(self) -> None:
        """Stop the file watcher while the relay does not sleep on it: busy, or waiting on acks
        (a backfill keeps it so, and its own writes to the -wal were a flood of events)."""
        if (self._watcher is not None and self._watcher.listening
                and time.monotonic() - self._slept_on_watcher > QUIET_AFTER_S):
            self._watcher.quiet()

    # ----------------------------------------------------------------- one pass
    def step(self) -> bool:
        """One pass of the loop; True if it did any work (so the caller should not sleep)."""
        now = time.monotonic()
        glance = self.transport.glance()
        self._check_sentinel(glance.sentinel, glance.replaced)
        listened = self.transport.open_acks(self._listener.take()) if self._listener is not None else []
        acks = len(glance.acks) + len(listened)
        for ack in listened + glance.acks:
            self._on_ack(ack)
        lost = self._detect_lost_jobs(now)
        due = self.scheduler.due_resends(time.time(), mapped=lambda table: table in self.mapping.tables)
        read = sum(self._read(lane) for lane in LANES)
        sent = self._dispatch(now)
        self._persist(force=self.idle)
        self._housekeeping(now)
        return bool(acks or lost or due or read or sent)

    def _commit(self, decision: Decision | None) -> None:
        """Write what ``decision`` needs durably (one transaction), then let it take effect."""
        if decision is None:
            return
        if decision.durable:
            with immediate(self.conn):
                if decision.resends:
                    resends.schedule(self.conn, decision.resends, decision.due or time.time(), decision.reason)
                if decision.dead_letters:
                    dead_letters.record(self.conn, decision.dead_letters)
                if decision.cleared_letters:
                    dead_letters.clear(self.conn, decision.cleared_letters)
        decision.commit()
        if decision.drop_payloads:
            # Last, once the keys are safely back: if Redis is down this raises into the backoff,
            # and the payload's TTL (or the wipe that took Redis down) reaps it.
            self.transport.drop_payloads(decision.drop_payloads)

    def _check_sentinel(self, sentinel: str | None, replaced: str | None) -> None:
        """A missing sentinel means Redis lost everything: every job in flight is lost.

        So does a new Redis identity (``replaced``: a failover, or a restart, that may have
        lost recent writes while the sentinel key survived): see :mod:`.redis_identity`.
        """
        if replaced is not None:
            self.log.warning("redis was replaced: treating it as a wipe", reason=replaced)
            self._extra["redis_failovers"] = self._extra.get("redis_failovers", 0) + 1
            sentinel = None
        if sentinel == self.run_id:
            return
        if not self._started:
            self._take_over(sentinel)
        elif self.scheduler.in_flight():
            self.log.warning("redis lost its data (sentinel missing): re-sending unacknowledged work")
            self._commit(self.scheduler.on_redis_wiped(time.time()))
        else:
            self._extra["redis_wipes"] = self._extra.get("redis_wipes", 0) + 1
        # Fence every partition lane and live slot so that jobs queued before write nothing, and
        # hold back the keys such a job may carry while its lease is still held.
        now = time.monotonic()
        for partition, lane, held_s in self.transport.fence_all(self.settings.partitions, self.run_id):
            self.scheduler.hold(partition, lane, now + held_s + self.settings.lease_seconds,
                                layout_may_differ=not self._started)
        if not self._started:
            with immediate(self.conn):
                set_state(self.conn, StateKey.RELAY_RUN_ID, self.run_id)
            self._started = True
        self.transport.identity.confirm()  # handled: not reported again (it would be, had this raised)

    def _take_over(self, sentinel: str | None) -> None:
        """First pass of this run: find what earlier runs may have left half-written.

        Jobs an earlier relay dispatched but never saw acknowledged still have their
        payload keys in Redis; their objects are suspects (replaced, and re-sent once more
        after the write horizon). If Redis lost its data since the earlier run (no
        sentinel, but that run set one), nothing says which jobs were in flight: every
        change not yet acknowledged is a suspect.
        """
        upto: dict[str, int] = {}
        if sentinel is None and get_state(self.conn, StateKey.RELAY_RUN_ID) is not None:
            marks = progress.marks(self.conn)
            upto = {LIVE: marks.live, BULK: marks.bulk}
            if any(upto[lane] > self.checkpoints[lane] for lane in LANES):
                self.log.warning("redis lost the earlier run's jobs: replacing and re-sending every "
                                 "unacknowledged change", upto=upto)
        suspects, self._earlier_payloads = self.transport.earlier_payloads()
        if suspects:
            self.log.warning("jobs of an earlier run never acknowledged: replacing and re-sending their keys",
                             jobs=len(self._earlier_payloads), objects=len(suspects))
        if not self._earlier_payloads and not upto:
            return
        marks = progress.marks(self.conn)
        self.scheduler.suspect_earlier_run(suspects, upto)
        self._earlier_marks = {LIVE: marks.live, BULK: marks.bulk}

    def _on_ack(self, ack: Any) -> None:
        job = self.scheduler.job(ack.partition, ack.token)
        decision = self.scheduler.on_ack(ack.partition, ack.token, ack.outcome, rejected=ack.rejected,
                                         unsure=ack.unsure, now=time.monotonic(), wall=time.time())
        if decision is None:
            return
        log = self.log.bind(batch_id=ack.batch_id, partition=ack.partition)
        self._commit(decision)
        if ack.outcome == "applied":
            if job is not None:
                self.scheduler.record_lag(job.entries, time.time())
                self.scheduler.record_applied(job, time.time())
            if ack.rejected:
                log.warning("weaviate rejected rows: dead-lettered", count=len(ack.rejected))
            if ack.unsure:
                log.info("job applied after a retried request: its keys go out once more after the horizon",
                         keys=len(decision.resends))
        elif ack.outcome == "fenced":
            log.warning("job lost its lease before finishing; re-sending", error=ack.error)
        elif job is not None:
            self._note_error(f"{job.holds}: {ack.error}", self.scheduler.backing_off(job, time.monotonic()))

    def _detect_lost_jobs(self, now: float) -> int:
        """Jobs whose worker died or froze: fence them off and re-send their keys."""
        due = self.scheduler.jobs_to_check(now)
        if not due:
            return 0
        lost = 0
        for job, holder in zip(due, self.transport.leases(due)):
            status = None if holder == job.token else self.transport.job_status(job)
            decision = self.scheduler.on_lease(job, holder, status, now=now, wall=time.time())
            if decision is not None:
                self.log.warning("job lost; fencing it and re-sending its keys", batch_id=job.batch_id,
                                 partition=job.partition, lane=job.lane, reason=decision.reason)
                self._commit(decision)
                self._record_failure(f"{job.holds}: {decision.reason}")
                lost += 1
        return lost

    def _read(self, lane: str) -> int:
        """Read the next rows of ``lane`` if the scheduler has room for them."""
        room = self.scheduler.read_room(lane)
        if room <= 0:
            return 0
        limit = min(READ_CHUNK if lane == LIVE else BULK_READ_CHUNK, room)
        rows = lanes.read(self.conn, lane, self.scheduler.read_cursor(lane), limit)
        changes: list[Change] = []
        for row in rows:
            table = self.mapping.tables.get(row.table)
            if table is None:
                continue  # captured but not mapped (excluded later): nothing to apply
            try:
                object_id = table.uuid_for_key(row.key)
            except MappingError:  # a NULL key value: no identity, so no object (verify lists the row)
                self._extra["null_keys"] = self._extra.get("null_keys", 0) + 1
                continue
            changes.append(Change(lane, row.seq, row.table, tuple(row.key), object_id, row.ts))
        self._commit(self.scheduler.outbox_read(lane, [r.seq for r in rows], changes,
                                                exhausted=len(rows) < limit, wall=time.time()))
        if self._earlier_payloads and self.scheduler.earlier_run_read() and all(
                self.scheduler.read_cursor(ln) >= self._earlier_marks.get(ln, 0) for ln in LANES):
            # every change the earlier run could have had in flight is read and marked
            self.transport.delete_keys(self._earlier_payloads)
            self._earlier_payloads = []
        return len(rows)

    def _dispatch(self, now: float) -> int:
        """Send this pass's jobs: live ones first, in a MULTI of their own.

        Building a history job reads and converts its rows in this one thread; a live job
        that waited in the same MULTI would carry that time in its lag. The tombstones of
        retired jobs go out with the first MULTI, ahead of every job of the pass (a slot's
        new holder, live or history, sets its own token after them).
        """
        jobs = self.scheduler.take_jobs(now)
        live = [job for job in jobs if job.lane == LIVE]
        history = [job for job in jobs if job.lane != LIVE]
        retired = self.scheduler.take_retired(jobs)
        sent = 0
        if live or not history:  # tombstones go alone when no job goes out
            sent, retired = self._send(live, retired, unsent=jobs), []
        if history:
            sent += self._send(history, retired, unsent=history)
        return sent

    def _send(self, jobs: list[Job], retired: list[tuple[int, str]], *, unsent: list[Job]) -> int:
        """Build and send ``jobs`` (with the tombstones of ``retired``) in one MULTI. If
        anything fails, ``retired`` and every job of ``unsent`` go back, owed a re-send."""
        outgoing: list[Outgoing] = []
        try:
            built = build_payloads(self.conn, self.mapping, jobs) if jobs else {}
            for job in jobs:
                payload = built[job.token]
                if payload.refused:  # dead letters now; the job goes on without those rows
                    self._commit(self.scheduler.refused_at_build(job, payload.refused))
                if not job.entries:
                    continue
                outgoing.append(Outgoing(job, payload.payload.dumps(), len(payload.payload.upserts),
                                         len(payload.payload.deletes)))
            # fences of jobs that ended unanswered go out even when no new job does
            self.transport.send(outgoing, retire=retired)
        except BaseException:
            # Keys taken but not sent go back, owed a re-send (Redis may have taken the MULTI).
            self.scheduler.give_back_retired(retired)
            if not unsent:
                raise
            try:
                self._commit(self.scheduler.send_failed([j for j in unsent if j.entries], time.time()))
            except Exception as exc:  # noqa: BLE001 - SQLite failing too: the next relay re-reads the lanes
                self.log.error("could not hand back keys of a failed dispatch", error=str(exc))
            raise
        for out in outgoing:
            self.log.debug("dispatched", batch_id=out.job.batch_id, partition=out.job.partition, lane=out.job.lane,
                           token=out.job.token, upserts=out.upserts, deletes=out.deletes)
        return len(outgoing)

    def _persist(self, *, force: bool = False) -> None:
        """Store both checkpoints and prune the lanes below them, and delete applied re-sends: at
        most every 0.5 s (each is a write transaction competing with the app for the write
        lock), and always when idle or stopping."""
        checkpoints = self.checkpoints
        changed = {lane: c for lane, c in checkpoints.items() if c > self._persisted[lane]}
        if not changed and not self.scheduler.owed_done:
            return
        now = time.monotonic()
        if not force and now - self._last_persist < CHECKPOINT_INTERVAL:
            return
        self._last_persist = now
        retention = self.settings.outbox_retention_seconds
        done = self.scheduler.take_owed_done()
        try:
            with immediate(self.conn):
                for lane, value in changed.items():
                    set_state(self.conn, progress.CHECKPOINT_KEYS[lane], str(value))
                    lanes.prune(self.conn, lane, value, older_than=time.time() - retention if retention > 0 else None)
                resends.clear(self.conn, done)
        except BaseException:
            self.scheduler.give_back_owed_done(done)
            raise
        self._persisted.update(changed)

    def _housekeeping(self, now: float) -> None:
        for mapping in (self.drift.check(now), self.versions.check()):
            if mapping is not None:
                self.mapping = mapping
                self.transport.collections = mapping.write_collections()
        self.transport.cleanup(now)
        if now - self._last_status > STATUS_INTERVAL:
            self._last_status = now
            self.transport.publish(self.snapshot())

    # ----------------------------------------------------------------- errors and status
    def _note_error(self, message: str, backoff: float) -> None:
        self.log.warning("backing off", error=message, seconds=round(backoff, 2))
        self._record_failure(message)

    def _record_failure(self, message: str) -> None:
        """Extend the durable error streak that tells `status` the relay is stuck (writer/stuck.py)."""
        self._last_error = message
        try:
            self._error_streak.note(self.conn, message, self.checkpoints[LIVE])
        except Exception:  # noqa: BLE001 - recording an error must not raise another
            pass

    def snapshot(self) -> dict[str, Any]:
        """The relay's in-memory view, for ``status`` and ``/metrics`` (published every second)."""
        return {
            "run_id": self.run_id, "pid": os.getpid(), "host": socket.gethostname(), "at": time.time(),
            **self.scheduler.snapshot(time.monotonic(), time.time()),
            "last_error": self._last_error,
            "stats": self.stats,
        }
