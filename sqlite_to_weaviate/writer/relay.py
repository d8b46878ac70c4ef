"""The relay: outbox rows in, ordered RQ jobs out, a durable checkpoint behind them.

One relay runs per database (a file lock next to it makes a second one fail fast). Each
pass it: notices a Redis wipe (sentinel key gone), collects worker acknowledgements,
declares jobs of dead or frozen workers lost, reads new outbox rows, dispatches at most one
job per partition with rows read *now* from SQLite, and advances the checkpoint over the
contiguous acknowledged prefix, pruning the outbox below it. All of the relay's memory can
be lost at any moment: it rebuilds from the checkpoint in SQLite, and re-sending a change
is harmless (idempotent full-image upserts and deletes by deterministic uuid). What it
owes later (a second send of the keys of a job whose outcome it does not know) is in
SQLite too (``writer.resends``), written before the relay moves on.

See docs/architecture.md for the argument that this keeps invariants 1-7.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from sqlite_to_weaviate import capture, tool_objects
from sqlite_to_weaviate.capture import get_state, read_outbox, set_state
from sqlite_to_weaviate.capture.state import ensure_state_table
from sqlite_to_weaviate.capture.txn import immediate
from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.logs import get_logger, new_correlation_id
from sqlite_to_weaviate.mapping import ConversionError, Mapping, MappingError, ensure_collections
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer import dead_letters, resends
from sqlite_to_weaviate.writer.job import JOB_FUNCTION, write_horizon
from sqlite_to_weaviate.writer.partitioning import partition_of
from sqlite_to_weaviate.writer.payload import PAYLOAD_TTL_SECONDS, Ack, Delete, JobPayload, JobTicket
from sqlite_to_weaviate.writer.redis_identity import FailoverWatch
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.ledger import Ledger
from sqlite_to_weaviate.writer.row_reader import read_rows
from sqlite_to_weaviate.writer.wake import DatabaseWatcher
from sqlite_to_weaviate.writer.weaviate_apply import ALL_TENANTS

CHECKPOINT_KEY = "relay.checkpoint"
LAST_ERROR_KEY = "relay.last_error"
RUN_ID_KEY = "relay.run_id"  # the run that last set the Redis sentinel (to tell a wipe from a first start)
READ_CHUNK = 5000
DRIFT_CHECK_INTERVAL = 5.0
CHECKPOINT_INTERVAL = 0.5
# Failures the relay outlives by backing off: Redis down, the database busy beyond the busy
# timeout, the file system hiccuping. Anything else is a bug and stops the relay loudly.
TRANSIENT_ERRORS = (redis.RedisError, sqlite3.OperationalError, OSError)


class RelayAlreadyRunning(S2WError):
    """Another relay holds the lock for this database."""


@dataclass
class Entry:
    """One changed key: waiting in a partition, or part of an in-flight job."""

    table: str
    key: tuple
    object_id: uuid.UUID
    seqs: list[int] = field(default_factory=list)
    captured_at: float | None = None  # outbox ts of the oldest change waiting (for lag)
    suspect: bool = False  # its last write had an unknown outcome: replace the object
    resend_due: float | None = None  # set for a durable re-send: the due time of its row

    def copy(self, *, suspect: bool | None = None) -> "Entry":
        return Entry(self.table, self.key, self.object_id, list(self.seqs), self.captured_at,
                     self.suspect if suspect is None else suspect, self.resend_due)

    def merge(self, other: "Entry") -> None:
        """Fold another change of the same key into this one (it is read at dispatch anyway)."""
        self.seqs.extend(other.seqs)
        if self.captured_at is None or (other.captured_at is not None and other.captured_at < self.captured_at):
            self.captured_at = other.captured_at
        self.suspect = self.suspect or other.suspect
        if other.resend_due is not None:
            self.resend_due = max(self.resend_due or 0.0, other.resend_due)


@dataclass
class InFlight:
    job_id: str
    token: str
    batch_id: str
    entries: list[Entry]
    dispatched_at: float
    next_check: float
    started_without_lease_since: float | None = None


@dataclass
class Partition:
    number: int
    pending: dict[uuid.UUID, Entry] = field(default_factory=dict)
    inflight: InFlight | None = None
    not_before: float = 0.0
    attempts: int = 0

    def requeue_front(self, entries: list[Entry], *, suspect: bool = False) -> None:
        """Put entries of a failed or lost job back ahead of newer pending keys.

        ``suspect``: the job's outcome is unknown, so its objects are replaced when re-sent.
        """
        merged: dict[uuid.UUID, Entry] = {}
        for entry in entries:
            merged[entry.object_id] = entry.copy(suspect=entry.suspect or suspect)
        for object_id, entry in self.pending.items():
            if object_id in merged:
                merged[object_id].merge(entry)
            else:
                merged[object_id] = entry
        self.pending = merged

    def add(self, entry: Entry) -> None:
        existing = self.pending.get(entry.object_id)
        if existing is None:
            self.pending[entry.object_id] = entry
        else:
            existing.merge(entry)


class RelayLock:
    """An exclusive flock beside the database; released by the kernel if the relay dies."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".s2w-relay.lock")
        self._fh: Any = None

    def acquire(self) -> None:
        self._fh = open(self.path, "a+")  # noqa: SIM115 - held for the relay's lifetime
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            self._fh = None
            raise RelayAlreadyRunning(
                f"another relay is already running for {self.path.with_suffix('')} (lock {self.path}); "
                "run exactly one relay per database"
            ) from None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class Relay:
    """Reads the outbox and keeps every partition's single job slot busy."""

    def __init__(self, settings: Settings, *, mapping: Mapping | None = None) -> None:
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.run_id = uuid.uuid4().hex[:12]
        self.log = get_logger("s2w.relay", run_id=self.run_id)
        self.conn = settings.open_db()
        self.conn.row_factory = None
        self.mapping = mapping if mapping is not None else settings.load_mapping(self.conn)
        self.redis = settings.connect_redis()
        self.queue = Queue(self.keys.queue, connection=self.redis, serializer=JSONSerializer)
        self._init_tables()
        checkpoint = int(get_state(self.conn, CHECKPOINT_KEY, "0") or 0)
        self.ledger = Ledger(checkpoint)
        self._persisted = checkpoint
        self.partitions = [Partition(n) for n in range(settings.partitions)]
        self.horizon = write_horizon(settings.lease_seconds)
        # re-sends not yet due (mirror of the durable rows), and applied ones to delete
        self._resends: dict[str, resends.Resend] = {r.object_id: r for r in resends.load(self.conn)}
        self._resends_done: list[tuple[str, float]] = []
        self._started = False
        self._startup_suspects: set[str] = set()  # object ids an earlier run may have half-written
        self._suspect_upto = 0  # outbox seqs <= this: every change is suspect (Redis lost the earlier run's jobs)
        self._startup_high_water = 0
        self._old_payload_keys: list[bytes] = []
        self._dead_uuids = dead_letters.uuids(self.conn)
        self._token_counter = 0
        self._outbox_exhausted = False
        self._last_status_publish = 0.0
        self._last_registry_cleanup = 0.0
        self._last_drift_check = time.monotonic()
        self._last_persist = 0.0
        self._last_error: str | None = None
        self._lock = RelayLock(settings.sqlite_path)
        self._redis_identity = FailoverWatch()  # a failover that lost writes is a wipe (writer.redis_identity)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.stats: defaultdict[str, int] = defaultdict(int)
        # commit -> applied delay of recent changes (seconds), for metrics and benches
        self.lag_samples: deque[float] = deque(maxlen=100_000)

    # ----------------------------------------------------------------- lifecycle
    def _init_tables(self) -> None:
        with immediate(self.conn):
            dead_letters.ensure_table(self.conn)
            ensure_state_table(self.conn)
            resends.ensure_table(self.conn)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current pass (signal-handler safe)."""
        self._stop.set()
        self._wake.set()

    def close(self) -> None:
        self._lock.release()
        try:
            self.redis.close()
        finally:
            self.conn.close()

    def run(self, *, watch: bool = True) -> None:
        """Run until :meth:`stop`; survives Redis/Weaviate outages with exponential backoff."""
        self._lock.acquire()
        watcher = DatabaseWatcher(self.settings.sqlite_path, self._wake).start() if watch else None
        backoff = 0.0
        self.log.info("relay started", database=str(self.settings.sqlite_path), checkpoint=self.ledger.checkpoint,
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
            if watcher is not None:
                watcher.stop()
            try:
                self._persist_checkpoint(force=True)
            except Exception as exc:  # noqa: BLE001 - best effort on the way out; durable state is consistent
                self.log.warning("final checkpoint not written", error=str(exc))
            self.log.info("relay stopped", checkpoint=self.ledger.checkpoint)
            self._lock.release()

    def _idle_wait(self, busy: bool) -> None:
        if busy:
            return
        if any(p.inflight for p in self.partitions):
            item = self.redis.blpop([self.keys.acks], timeout=0.05)
            if item is not None:
                self._handle_ack(Ack.loads(item[1]))
            return
        self._wake.wait(self.settings.poll_interval if not self._resends else min(self.settings.poll_interval, 0.2))
        self._wake.clear()

    def drain(self, timeout: float = 60.0) -> bool:
        """Run passes until everything captured so far is applied; True if drained in time."""
        deadline = time.monotonic() + timeout
        with_lock = not self._lock.held
        if with_lock:
            self._lock.acquire()
        try:
            while time.monotonic() < deadline:
                try:
                    busy = self.step()
                    if self.idle:
                        self._persist_checkpoint(force=True)
                        return True
                    self._idle_wait(busy)
                except TRANSIENT_ERRORS as exc:
                    self._note_error(f"{type(exc).__name__}: {exc}", self.settings.retry_delay)
                    time.sleep(self.settings.retry_delay)
            return False
        finally:
            if with_lock:
                self._lock.release()

    @property
    def idle(self) -> bool:
        return (
            self._outbox_exhausted and self.ledger.unacked == 0 and not self._resends and not self._resends_done
            and all(not p.pending and p.inflight is None for p in self.partitions)
        )

    # ----------------------------------------------------------------- one pass
    def step(self) -> bool:
        """One pass of the loop; True if it did any work (so the caller should not sleep)."""
        now = time.monotonic()
        self._check_sentinel()
        acks = self._collect_acks()
        lost = self._detect_lost_jobs(now)
        resweeps = self._due_resweeps(now)
        read = self._read_outbox()
        sent = self._dispatch(now)
        self._persist_checkpoint(force=self.idle)
        self._housekeeping(now)
        return bool(acks or lost or resweeps or read or sent)

    def _check_sentinel(self) -> None:
        """A missing sentinel means Redis lost everything: re-send all unacknowledged work.

        So does a new Redis identity (a failover or a restart that may have lost recent
        writes while the sentinel key survived): see ``writer.redis_identity``.
        """
        value = self.redis.get(self.keys.sentinel)
        replaced = self._redis_identity.check(self.redis)
        if replaced is not None:
            self.log.warning("redis was replaced: treating it as a wipe", reason=replaced)
            self.stats["redis_failovers"] += 1
            value = None
        if value is not None and value.decode() == self.run_id:
            return
        if not self._started:
            self._take_over(value)
        inflight = [p for p in self.partitions if p.inflight is not None]
        if inflight:
            self.log.warning("redis lost its data (sentinel missing): re-sending unacknowledged work",
                             inflight=len(inflight))
            self.stats["redis_wipes"] += 1
            for p in inflight:
                self._declare_lost(p, "redis wiped")
        # Fence every partition so that jobs queued before (by an earlier relay run) write nothing,
        # and hold back partitions whose lease is still held by such a job until it has expired.
        pipe = self.redis.pipeline()
        for p in self.partitions:
            pipe.set(self.keys.fence(p.number), f"{self.run_id}-start")
            pipe.pttl(self.keys.lease(p.number))
        pipe.set(self.keys.sentinel, self.run_id)
        results = pipe.execute()
        if not self._started:
            with immediate(self.conn):
                set_state(self.conn, RUN_ID_KEY, self.run_id)
            self._started = True
        now = time.monotonic()
        for p, ttl_ms in zip(self.partitions, results[1::2]):
            if isinstance(ttl_ms, int) and ttl_ms > 0:
                p.not_before = max(p.not_before, now + ttl_ms / 1000 + self.settings.lease_seconds)

    def _take_over(self, sentinel: bytes | None) -> None:
        """First pass of this run: find what earlier runs may have left half-written.

        Jobs an earlier relay dispatched but never saw acknowledged still have their
        payload keys in Redis; their objects are suspects (replaced, and re-sent once more
        after the write horizon). If Redis lost its data since the earlier run (no
        sentinel, but that run set one), nothing says which jobs were in flight: every
        change not yet acknowledged is a suspect.
        """
        previous_run = get_state(self.conn, RUN_ID_KEY)
        self._startup_high_water = int(self.conn.execute(
            "SELECT coalesce(max(seq), 0) FROM _s2w_outbox").fetchone()[0])
        if sentinel is None and previous_run is not None and self._startup_high_water > self.ledger.checkpoint:
            self._suspect_upto = self._startup_high_water
            self.log.warning("redis lost the earlier run's jobs: replacing and re-sending every unacknowledged change",
                             upto_seq=self._suspect_upto)
        for key in self.redis.scan_iter(match=self.keys.payload("*"), count=1000):
            raw = self.redis.get(key)
            if raw is None:
                continue
            try:
                self._startup_suspects.update(JobPayload.loads(raw).object_ids())
            except ValueError:
                pass  # unreadable: its objects are re-sent with everything unacknowledged anyway
            self._old_payload_keys.append(key)
        if self._startup_suspects:
            self.log.warning("jobs of an earlier run never acknowledged: replacing and re-sending their keys",
                             jobs=len(self._old_payload_keys), objects=len(self._startup_suspects))

    def _collect_acks(self) -> int:
        raw = self.redis.lpop(self.keys.acks, 1000)
        for item in raw or []:
            self._handle_ack(Ack.loads(item))
        return len(raw or [])

    def _handle_ack(self, ack: Ack) -> None:
        if not 0 <= ack.partition < len(self.partitions):
            return
        p = self.partitions[ack.partition]
        job = p.inflight
        if job is None or job.token != ack.token:
            self.stats["stale_acks"] += 1  # a superseded job's late ack: its work was re-sent
            return
        p.inflight = None
        log = self.log.bind(batch_id=ack.batch_id, partition=p.number)
        if ack.outcome == "applied":
            p.attempts = 0
            self._settle(job.entries, rejected=ack.rejected, stage="weaviate")
            self.stats["applied_jobs"] += 1
            self.stats["applied_changes"] += len(job.entries)
            if ack.rejected:
                log.warning("weaviate rejected rows: dead-lettered", count=len(ack.rejected))
        elif ack.outcome == "fenced":
            log.warning("job lost its lease before finishing; re-sending", error=ack.error)
            self._schedule_resweep(job.entries, "fenced")
            p.requeue_front(job.entries, suspect=True)
        else:
            # A request that failed without an answer may still be applied (or half-applied)
            # by the server: replace the objects when re-sending, and re-send once more later.
            self._schedule_resweep(job.entries, f"transient: {ack.error}"[:200])
            p.attempts += 1
            delay = min(self.settings.backoff_max, self.settings.retry_delay * (2 ** (p.attempts - 1)))
            p.not_before = time.monotonic() + delay
            p.requeue_front(job.entries, suspect=True)
            self.stats["retries"] += 1
            self._note_error(f"partition {p.number}: {ack.error}", delay)

    def _settle(self, entries: list[Entry], *, rejected: dict[str, str], stage: str) -> None:
        """Entries are done: acknowledge their seqs; park rejected ones as dead letters."""
        letters = []
        synced = []
        for entry in entries:
            reason = rejected.get(str(entry.object_id))
            if reason is not None:
                letters.append((str(entry.object_id), entry.table, entry.key, stage, reason))
                self._dead_uuids.add(str(entry.object_id))
            elif str(entry.object_id) in self._dead_uuids:
                synced.append(str(entry.object_id))
                self._dead_uuids.discard(str(entry.object_id))
        if letters or synced:
            with immediate(self.conn):
                dead_letters.record(self.conn, letters)
                dead_letters.clear(self.conn, synced)
        self.ledger.ack(seq for entry in entries for seq in entry.seqs)
        self._resends_done.extend((str(e.object_id), e.resend_due) for e in entries if e.resend_due is not None)
        now = time.time()
        self.lag_samples.extend(now - e.captured_at for e in entries if e.captured_at is not None)

    def _detect_lost_jobs(self, now: float) -> int:
        """Jobs whose worker died or froze: fence them off and re-send their keys."""
        due = [p for p in self.partitions if p.inflight is not None and now >= p.inflight.next_check]
        if not due:
            return 0
        pipe = self.redis.pipeline()
        for p in due:
            pipe.get(self.keys.lease(p.number))
        leases = pipe.execute()
        lost = 0
        for p, lease in zip(due, leases):
            job = p.inflight
            assert job is not None
            job.next_check = now + min(1.0, self.settings.lease_seconds / 3)
            if lease is not None and lease.decode() == job.token:
                job.started_without_lease_since = None
                continue
            status = self._job_status(job.job_id)
            if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
                continue  # waiting for a worker
            if status in (JobStatus.STARTED, JobStatus.FINISHED):
                # started: the worker has not taken its lease yet, or died holding none;
                # finished: its ack is on the way, unless it was lost (re-sending is harmless).
                if job.started_without_lease_since is None:
                    job.started_without_lease_since = now
                if now - job.started_without_lease_since < self.settings.lease_seconds:
                    continue
            self._declare_lost(p, f"job {status.value if status else 'vanished'} without acknowledgement")
            lost += 1
        return lost

    def _job_status(self, job_id: str) -> JobStatus | None:
        try:
            return Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer).get_status(refresh=False)
        except NoSuchJobError:
            return None

    def _declare_lost(self, p: Partition, why: str) -> None:
        job = p.inflight
        if job is None:
            return
        self.log.warning("job lost; fencing it and re-sending its keys", batch_id=job.batch_id,
                         partition=p.number, reason=why)
        self._schedule_resweep(job.entries, f"lost: {why}")  # durable first: if this fails, the job stays in flight
        self.stats["lost_jobs"] += 1
        p.inflight = None
        p.requeue_front(job.entries, suspect=True)
        # Last, once the keys are safely back in the partition: if Redis is down this raises
        # into the relay's backoff, and the key's TTL (or the wipe that took Redis down) reaps it.
        self.redis.delete(self.keys.payload(job.token))  # a late start of that job finds nothing to write

    def _schedule_resweep(self, entries: list[Entry], reason: str) -> None:
        """Re-send these keys once more after any write of the failed job could have landed.

        A job whose outcome is unknown can still write for up to ``write_horizon`` (a call
        it had started, retrying inside the client, or a request the server finishes
        late); a second, fresh read of the rows sent after that overwrites whatever it
        wrote (docs/architecture.md, invariant 4). The promise is durable before this
        returns (``writer.resends``).
        """
        due = time.time() + self.horizon
        items = [(str(e.object_id), e.table, e.key) for e in entries]
        resends.schedule(self.conn, items, due, reason)
        for object_id, table, key in items:
            previous = self._resends.get(object_id)
            self._resends[object_id] = resends.Resend(object_id, table, key, max(due, previous.due if previous else 0.0),
                                                      reason)
        self.stats["resends_scheduled"] += len(items)

    def _due_resweeps(self, now: float) -> int:
        wall = time.time()
        due = [r for r in self._resends.values() if r.due <= wall]
        for resend in due:
            del self._resends[resend.object_id]
            table = self.mapping.tables.get(resend.table)
            if table is None:  # no longer mapped: nothing to send
                self._resends_done.append((resend.object_id, resend.due))
                continue
            object_id = uuid.UUID(resend.object_id)
            self.partitions[partition_of(object_id, len(self.partitions))].add(
                Entry(resend.table, tuple(resend.key), object_id, suspect=True, resend_due=resend.due))
        return len(due)

    def _read_outbox(self) -> int:
        room = self.settings.read_ahead - self.ledger.unacked
        if room <= 0:
            return 0
        limit = min(READ_CHUNK, room)
        rows = read_outbox(self.conn, self.ledger.read_cursor, limit)
        self._outbox_exhausted = len(rows) < limit
        unmapped: list[int] = []
        suspects: list[Entry] = []
        for row in rows:
            self.ledger.read(row.seq)
            table = self.mapping.tables.get(row.table)
            if table is None:
                unmapped.append(row.seq)  # captured but not mapped (excluded later): nothing to apply
                continue
            object_id = table.uuid_for_key(row.key)
            entry = Entry(row.table, row.key, object_id, [row.seq], row.ts)
            if row.seq <= self._suspect_upto or str(object_id) in self._startup_suspects:
                entry.suspect = True
                suspects.append(entry)
            self.partitions[partition_of(object_id, len(self.partitions))].add(entry)
        if suspects:
            self._schedule_resweep(suspects, "an earlier relay run did not see its job finish")
            self._startup_suspects.difference_update(str(e.object_id) for e in suspects)
        if self._old_payload_keys and self.ledger.read_cursor >= self._startup_high_water:
            # every change the earlier run could have had in flight is read and marked
            self.redis.delete(*self._old_payload_keys)
            self._old_payload_keys = []
            self._startup_suspects.clear()
        if unmapped:
            self.ledger.ack(unmapped)
        return len(rows)

    def _dispatch(self, now: float) -> int:
        ready = [p for p in self.partitions if p.inflight is None and p.pending and now >= p.not_before]
        if not ready:
            return 0
        batches = {p.number: self._take(p) for p in ready}
        try:
            return self._send(ready, batches, now)
        except BaseException:
            # Taken keys that did not become an in-flight job go back: never drop a change.
            for p in ready:
                if p.inflight is None or p.inflight.entries is not batches[p.number]:
                    p.requeue_front(batches[p.number])
            raise

    def _send(self, ready: list[Partition], batches: dict[int, list[Entry]], now: float) -> int:
        """Enqueue one job per ready partition, all in one Redis round trip."""
        payloads = self._build_payloads(batches)
        pipe = self.redis.pipeline()
        pipe.multi()  # explicitly, before any command: RQ's enqueue calls multi() itself otherwise, and fails
        jobs: list[tuple[Partition, InFlight, int, int]] = []
        for p in ready:
            entries = batches[p.number]
            upserts, deletes, rejected, replace = payloads[p.number]
            if rejected:
                self._settle([e for e in entries if str(e.object_id) in rejected], rejected=rejected, stage="mapping")
                entries[:] = [e for e in entries if str(e.object_id) not in rejected]
            if not entries:
                continue
            self._token_counter += 1
            token = f"{self.run_id}-{self._token_counter}"
            batch_id = new_correlation_id()
            ticket = JobTicket(batch_id=batch_id, namespace=self.settings.namespace, partition=p.number,
                               token=token, lease_seconds=self.settings.lease_seconds,
                               redis_id=self._redis_identity.fingerprint)
            job_id = f"{self.settings.namespace}-p{p.number}-{token}"
            pipe.set(self.keys.payload(token), JobPayload(upserts, deletes, replace).dumps(), ex=PAYLOAD_TTL_SECONDS)
            pipe.set(self.keys.fence(p.number), token)
            self.queue.enqueue_call(
                JOB_FUNCTION, args=(ticket.to_json(),), job_id=job_id, timeout=self.settings.job_timeout,
                result_ttl=60, failure_ttl=self.settings.failure_ttl, ttl=None,
                description=f"apply batch {batch_id} to partition {p.number}",
                meta={"batch_id": batch_id, "partition": p.number}, pipeline=pipe,
            )
            job = InFlight(job_id=job_id, token=token, batch_id=batch_id, entries=entries,
                           dispatched_at=now, next_check=now + 1.0)
            jobs.append((p, job, len(upserts), len(deletes)))
        if not jobs:
            return 0
        pipe.execute()
        for p, job, upserts_count, deletes_count in jobs:
            p.inflight = job
            self.stats["dispatched"] += 1
            self.log.debug("dispatched", batch_id=job.batch_id, partition=p.number, upserts=upserts_count,
                           deletes=deletes_count)
        return len(jobs)

    def _take(self, p: Partition) -> list[Entry]:
        taken = []
        for object_id in list(p.pending)[: self.settings.batch_size]:
            taken.append(p.pending.pop(object_id))
        return taken

    def _build_payloads(
        self, batches: dict[int, list[Entry]]
    ) -> dict[int, tuple[list[dict[str, Any]], list[Delete], dict[str, str], list[str]]]:
        """Read the current rows of every key in one short read transaction and convert them."""
        by_table: dict[str, list[tuple]] = defaultdict(list)
        for entries in batches.values():
            for entry in entries:
                by_table[entry.table].append(entry.key)
        rows: dict[str, dict[tuple, dict[str, Any]]] = {}
        self.conn.execute("BEGIN")
        try:
            for table, keys in by_table.items():
                rows[table] = read_rows(self.conn, self.mapping.tables[table], keys)
        finally:
            self.conn.execute("COMMIT")
        out = {}
        for number, entries in batches.items():
            upserts: list[dict[str, Any]] = []
            deletes: list[Delete] = []
            rejected: dict[str, str] = {}
            replace: list[str] = []
            for entry in entries:
                table = self.mapping.tables[entry.table]
                row = rows[entry.table].get(entry.key)
                if row is None:
                    tenant = ALL_TENANTS if table.tenant_column else None
                    deletes.append(Delete(table.collection, str(entry.object_id), tenant))
                    continue
                try:
                    upserts.append(table.to_object(row, object_id=entry.object_id).to_json())
                except (ConversionError, MappingError) as exc:
                    rejected[str(entry.object_id)] = str(exc)
                    continue
                if entry.suspect:
                    replace.append(str(entry.object_id))
            out[number] = (upserts, deletes, rejected, replace)
        return out

    def _persist_checkpoint(self, *, force: bool = False) -> None:
        """Store the checkpoint and prune below it: at most every 0.5 s (each is a write txn
        competing with the app for the write lock), and always when idle or stopping."""
        checkpoint = self.ledger.checkpoint
        if checkpoint <= self._persisted and not self._resends_done:
            return
        now = time.monotonic()
        if not force and now - self._last_persist < CHECKPOINT_INTERVAL:
            return
        self._last_persist = now
        retention = self.settings.outbox_retention_seconds
        done = self._resends_done
        with immediate(self.conn):
            set_state(self.conn, CHECKPOINT_KEY, str(checkpoint))
            if retention > 0:
                self.conn.execute(
                    "DELETE FROM _s2w_outbox WHERE seq <= ? AND ts < ?", (checkpoint, time.time() - retention)
                )
            else:
                self.conn.execute("DELETE FROM _s2w_outbox WHERE seq <= ?", (checkpoint,))
            resends.clear(self.conn, done)
        self._resends_done = []
        self._persisted = checkpoint

    def _housekeeping(self, now: float) -> None:
        if now - self._last_drift_check > DRIFT_CHECK_INTERVAL:
            self._last_drift_check = now
            self._follow_schema_drift()
        if now - self._last_registry_cleanup > 15:
            self._last_registry_cleanup = now
            self.queue.started_job_registry.cleanup()
        if now - self._last_status_publish > 1.0:
            self._last_status_publish = now
            self.redis.set(self.keys.relay_status, json.dumps(self.snapshot()), ex=30)

    def _follow_schema_drift(self) -> None:
        """Schema changed under us (ADD COLUMN, table rebuild, ...): re-capture and re-map.

        ``repair_drift`` regenerates the triggers and enqueues every key of an affected
        table in one transaction, so nothing changed while the triggers were blind is
        lost; the reloaded mapping picks up new columns and the collection gains the new
        properties before any job carries them.
        """
        drift = capture.detect_drift(self.conn)
        if not drift:
            return
        self.log.warning("schema drift detected; re-capturing", drift=[f"{d.table}: {d.kind}" for d in drift])
        try:
            mapping = self.settings.load_mapping(self.conn)
            client = self.settings.connect_weaviate()
            try:
                actions = ensure_collections(client, mapping, on_create=self._record_collection,
                                             replication_factor=self.settings.replication_factor)
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 - Weaviate down or a mapping error: retried next interval
            self._note_error(f"schema drift not followed yet: {type(exc).__name__}: {exc}", DRIFT_CHECK_INTERVAL)
            return
        report = capture.repair_drift(self.conn)
        self.mapping = mapping
        self.stats["drift_repairs"] += 1
        self.log.info("schema drift repaired", reinstalled=list(report.reinstalled), collections=actions)

    def _record_collection(self, name: str) -> None:
        """A collection this relay just created is the migration's (rollback may delete it whole)."""
        with immediate(self.conn):
            tool_objects.record(self.conn, tool_objects.COLLECTION, name)

    def _note_error(self, message: str, backoff: float) -> None:
        self.log.warning("backing off", error=message, seconds=round(backoff, 2))
        if message != self._last_error:
            self._last_error = message
            try:
                with immediate(self.conn):
                    set_state(self.conn, LAST_ERROR_KEY, json.dumps({"at": time.time(), "error": message}))
            except Exception:  # noqa: BLE001 - recording an error must not raise another
                pass

    def snapshot(self) -> dict[str, Any]:
        """The relay's in-memory view, for ``status`` (published to Redis every second)."""
        now = time.monotonic()
        return {
            "run_id": self.run_id, "pid": os.getpid(), "host": socket.gethostname(), "at": time.time(),
            "checkpoint": self.ledger.checkpoint, "read_cursor": self.ledger.read_cursor,
            "unacked": self.ledger.unacked, "resweeps": len(self._resends),
            "resends_next_due_s": (round(min(r.due for r in self._resends.values()) - time.time(), 1)
                                   if self._resends else None),
            "pending": sum(len(p.pending) for p in self.partitions),
            "inflight": {
                str(p.number): {"batch_id": p.inflight.batch_id, "keys": len(p.inflight.entries),
                                "age_s": round(now - p.inflight.dispatched_at, 3)}
                for p in self.partitions if p.inflight is not None
            },
            "backing_off": {str(p.number): round(p.not_before - now, 3) for p in self.partitions if p.not_before > now},
            "last_error": self._last_error,
            "stats": dict(self.stats),
        }
