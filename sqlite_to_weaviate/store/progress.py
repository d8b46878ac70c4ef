"""How far the pipeline has got, read from durable state only: one answer for every caller.

``status``, ``ready``, the verifier's live re-checks, the backfill's politeness gate,
``migrate``'s drain and the tests all ask the same questions — is anything captured and
not yet applied, how old is the oldest live change, is a re-send still owed — and used to
answer them with their own SQL. They all read :func:`read_progress` now: one short read
transaction over both lanes' checkpoints and depths, the owed re-sends and the dead letters.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any

from . import dead_letters, lanes, resends
from .lanes import BULK, LIVE
from .state import StateKey, get_int

CHECKPOINT_KEYS = {LIVE: StateKey.RELAY_CHECKPOINT, BULK: StateKey.BULK_CHECKPOINT}


@dataclass(frozen=True)
class LaneProgress:
    checkpoint: int            # every row with seq <= it is applied (or parked as a dead letter)
    high_water: int            # the highest seq ever issued in the lane
    depth: int                 # rows beyond the checkpoint (not yet applied)
    oldest_ts: float | None    # capture time of the oldest of them


@dataclass(frozen=True)
class Marks:
    """Each lane's high-water mark at one instant: "everything captured up to now"."""

    live: int
    bulk: int


@dataclass(frozen=True)
class Progress:
    live: LaneProgress
    bulk: LaneProgress
    owed: int                  # keys owed a second send after a fault
    owed_next_due: float | None
    dead_letters: int
    at: float

    @property
    def caught_up(self) -> bool:
        """Nothing captured waits in either lane and no re-send is owed."""
        return self.live.depth == 0 and self.bulk.depth == 0 and self.owed == 0

    @property
    def live_lag_s(self) -> float | None:
        """Age of the oldest live change not yet applied (None when there is none)."""
        return None if self.live.oldest_ts is None else round(max(0.0, self.at - self.live.oldest_ts), 3)

    @property
    def marks(self) -> Marks:
        return Marks(self.live.high_water, self.bulk.high_water)

    def covers(self, marks: Marks) -> bool:
        """Every change up to ``marks`` is applied (and nothing is owed)."""
        return self.live.checkpoint >= marks.live and self.bulk.checkpoint >= marks.bulk and self.owed == 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(caught_up=self.caught_up, live_lag_s=self.live_lag_s)
        return data


def checkpoint(conn: sqlite3.Connection, lane: str) -> int:
    return get_int(conn, CHECKPOINT_KEYS[lane])


def _lane(conn: sqlite3.Connection, lane: str) -> LaneProgress:
    applied = checkpoint(conn, lane)
    count, oldest = lanes.depth(conn, lane, applied)
    return LaneProgress(applied, lanes.high_water(conn, lane), count, oldest)


def read_progress(conn: sqlite3.Connection) -> Progress:
    """Both lanes, the owed re-sends and the dead letters, in one read transaction."""
    opened = not conn.in_transaction
    if opened:
        conn.execute("BEGIN")
    try:
        owed, next_due = resends.pending(conn)
        return Progress(_lane(conn, LIVE), _lane(conn, BULK), owed, next_due, dead_letters.count(conn), time.time())
    finally:
        if opened:
            conn.execute("COMMIT")


def marks(conn: sqlite3.Connection) -> Marks:
    """Each lane's high-water mark now."""
    return Marks(lanes.high_water(conn, LIVE), lanes.high_water(conn, BULK))


def wait_applied(conn: sqlite3.Connection, target: Marks, timeout: float, *, poll: float = 0.1,
                 stall: float = 15.0, owed: bool = True) -> bool:
    """Poll until every change up to ``target`` is applied (and, with ``owed``, no re-send is
    owed); False on timeout, or when nothing moved for ``stall`` seconds (no relay running)."""
    now = time.monotonic()
    deadline, moved_at = now + timeout, now
    last = None
    while True:
        p = read_progress(conn)
        if p.live.checkpoint >= target.live and p.bulk.checkpoint >= target.bulk and (not owed or p.owed == 0):
            return True
        state = (p.live.checkpoint, p.bulk.checkpoint, p.owed)
        now = time.monotonic()
        waiting_for_due = owed and p.owed_next_due is not None and p.owed_next_due > p.at
        if state != last or waiting_for_due:
            moved_at, last = now, state
        if now >= deadline or now - moved_at >= stall:
            return False
        time.sleep(poll)
