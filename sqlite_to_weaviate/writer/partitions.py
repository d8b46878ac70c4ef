"""What the relay schedules: changes, the entries they become, jobs, and partitions.

Per-key order starts here: a partition holds one pending entry per key and lane (two
changes of a key fold into one: the row is read at dispatch, so the newest state goes
out), a live change takes over the waiting history entry of its key, and no key is
carried by two jobs in flight (:meth:`Partition.busy` names the keys of a partition's
bulk job; the scheduler keeps the live jobs). The decisions over these structures are the
scheduler's (``writer.scheduler``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlite_to_weaviate.store.lanes import BULK, LANES, LIVE

__all__ = ["BULK", "LANES", "LIVE", "Change", "Entry", "Job", "Owed", "Partition"]


@dataclass(frozen=True)
class Change:
    """One outbox row as the relay read it."""

    lane: str
    seq: int
    table: str
    key: tuple
    object_id: uuid.UUID
    ts: float | None = None   # commit time (live lane), for the lag


@dataclass(frozen=True)
class Owed:
    """A key owed one more send at ``due`` (wall clock): the mirror of a durable re-send row."""

    object_id: str
    table: str
    key: tuple
    due: float
    reason: str = ""


@dataclass
class Entry:
    """One key waiting in a partition or carried by a job: every change it stands for."""

    table: str
    key: tuple
    object_id: uuid.UUID
    seqs: dict[str, list[int]] = field(default_factory=dict)   # lane -> outbox seqs
    captured_at: float | None = None   # commit time of the oldest live change waiting
    suspect: bool = False              # its last write had an unknown outcome: replace it
    resend_due: float | None = None    # a durable re-send this entry carries out

    def merge(self, other: "Entry") -> None:
        for lane, seqs in other.seqs.items():
            self.seqs.setdefault(lane, []).extend(seqs)
        if other.captured_at is not None and (self.captured_at is None or other.captured_at < self.captured_at):
            self.captured_at = other.captured_at
        self.suspect = self.suspect or other.suspect
        if other.resend_due is not None:
            self.resend_due = max(self.resend_due or 0.0, other.resend_due)

    def copy(self, *, suspect: bool) -> "Entry":
        return Entry(self.table, self.key, self.object_id, {k: list(v) for k, v in self.seqs.items()},
                     self.captured_at, self.suspect or suspect, self.resend_due)


@dataclass
class Job:
    """One dispatched batch of one lane, named by its fence token.

    A bulk job holds one partition's bulk lane: ``partitions`` is ``(its partition,)``. A
    live job carries keys of any partitions (a trickle of app writes spread over many
    partitions goes out as one job, not one job per partition) and holds one *live slot*:
    ``partitions`` is ``(its slot,)``, and several live jobs can be in flight at once, one
    per slot. Either way the number is the fence and lease its worker checks and renews
    (``RedisKeys.fence(number, lane)``); per-key order does not rest on it but on no key
    being carried by two jobs in flight (``Scheduler``).
    """

    token: str
    batch_id: str
    partitions: tuple[int, ...]
    lane: str
    entries: list[Entry]
    dispatched_at: float
    next_check: float
    unleased_since: float | None = None
    _ids: frozenset[uuid.UUID] = field(default=frozenset(), repr=False, compare=False)
    _ids_of: list[Entry] | None = field(default=None, repr=False, compare=False)

    @property
    def partition(self) -> int:
        """Its partition (bulk) or live slot: names the job in RQ and in its worker's ack."""
        return self.partitions[0]

    @property
    def holds(self) -> str:
        """What it holds, for logs and errors: ``partition 3`` or ``live slot 3``."""
        return f"live slot {self.partition}" if self.lane == "live" else f"partition {self.partition}"

    def object_ids(self) -> frozenset[uuid.UUID]:
        """The keys it carries. Cached: every relay pass asks, for every partition with keys
        waiting (a profile of the live bench had rebuilding these sets as the relay's largest
        cost after converting rows); ``entries`` is only ever replaced, never edited in place."""
        if self._ids_of is not self.entries:
            self._ids, self._ids_of = frozenset(e.object_id for e in self.entries), self.entries
        return self._ids


@dataclass
class Partition:
    number: int
    pending: dict[str, dict[uuid.UUID, Entry]] = field(default_factory=lambda: {lane: {} for lane in LANES})
    bulk_job: Job | None = None   # its one bulk job in flight (live jobs hold slots, not partitions)
    not_before: float = 0.0
    attempts: int = 0

    def busy(self) -> frozenset[uuid.UUID]:
        """Keys of its bulk job in flight, which no second job may carry."""
        return self.bulk_job.object_ids() if self.bulk_job is not None else frozenset()

    def add(self, entry: Entry, lane: str) -> None:
        """Queue ``entry`` in ``lane``; a live change takes over a waiting history entry."""
        oid = entry.object_id
        if oid in self.pending[LIVE]:
            self.pending[LIVE][oid].merge(entry)
        elif oid in self.pending[BULK]:
            if lane == LIVE:
                waiting = self.pending[BULK].pop(oid)
                waiting.merge(entry)
                self.pending[LIVE][oid] = waiting
            else:
                self.pending[BULK][oid].merge(entry)
        else:
            self.pending[lane][oid] = entry

    def requeue_front(self, lane: str, entries: list[Entry], *, suspect: bool) -> None:
        """Put a failed or lost job's entries back ahead of newer keys (a live change still wins)."""
        front: dict[uuid.UUID, Entry] = {}
        for entry in entries:
            front[entry.object_id] = entry.copy(suspect=suspect)
        for oid in list(front):
            if lane == BULK and oid in self.pending[LIVE]:
                self.pending[LIVE][oid].merge(front.pop(oid))
            elif lane == LIVE and oid in self.pending[BULK]:
                front[oid].merge(self.pending[BULK].pop(oid))
        for oid, entry in self.pending[lane].items():
            if oid in front:
                front[oid].merge(entry)
            else:
                front[oid] = entry
        self.pending[lane] = front
