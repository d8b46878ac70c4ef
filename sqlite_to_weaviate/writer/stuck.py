"""When is the relay stuck? A streak of errors with no progress, kept durably.

The relay outlives failures by backing off (Redis down, a database lock, Weaviate refusing
every batch of a partition). Backing off is right for a minute and wrong for a day, and
the lag limit of ``status`` catches it only late — and without saying why. So every error
the relay backs off on extends an *error streak*: the first error, the latest one, how
many, and the relay checkpoint when it began. A streak ends when the checkpoint advances.

The relay is **stuck** when all of these hold (:func:`stuck_for`):

* captured changes are waiting (outbox depth beyond the checkpoint > 0);
* the streak has at least two errors and began more than ``max_stuck`` seconds ago;
* the durable checkpoint has not advanced since the streak began;
* the latest error is recent (``recent`` seconds, a little more than the longest backoff),
  i.e. the relay is still failing rather than gone (a missing relay is reported separately).

The streak lives in ``_s2w_state`` under ``relay.last_error`` (the key ``status`` always
read; the old ``{"at", "error"}`` form still parses), written when a streak begins and
otherwise at most every :data:`PERSIST_EVERY` seconds (a Redis wipe declares every
partition's job lost at once: one write, not one per partition). A restarted relay
continues the stored streak, so a crash loop is stuck too.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlite_to_weaviate.store.state import StateKey, get_state, set_state
from sqlite_to_weaviate.store.txn import immediate

STREAK_KEY = StateKey.RELAY_ERROR
PERSIST_EVERY = 2.0
DEFAULT_MAX_STUCK_S = 30.0


@dataclass(frozen=True)
class ErrorStreak:
    error: str
    at: float          # wall-clock time of the streak's first error
    last_at: float     # ... and of its latest
    count: int
    checkpoint: int    # relay checkpoint when the streak began (-1: unknown, an old record)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> "ErrorStreak | None":
        try:
            data = json.loads(text) if text else None
            if not isinstance(data, dict):
                return None
            at = float(data["at"])
            return cls(error=str(data.get("error")), at=at, last_at=float(data.get("last_at", at)),
                       count=int(data.get("count", 1)), checkpoint=int(data.get("checkpoint", -1)))
        except (KeyError, TypeError, ValueError):
            return None


def continue_streak(previous: ErrorStreak | None, error: str, checkpoint: int, now: float) -> ErrorStreak:
    """The streak after one more error at ``now`` with the relay at ``checkpoint``."""
    if previous is None or checkpoint > previous.checkpoint:
        return ErrorStreak(error=error, at=now, last_at=now, count=1, checkpoint=checkpoint)
    return replace(previous, error=error, last_at=now, count=previous.count + 1)


def stuck_for(streak: ErrorStreak | None, *, checkpoint: int, pending: int, now: float, max_stuck: float,
              recent: float) -> float | None:
    """Seconds the relay has been failing without progress, or None when it is not stuck."""
    if streak is None or pending <= 0 or streak.count < 2:
        return None
    if checkpoint > streak.checkpoint or now - streak.last_at > recent:
        return None
    seconds = now - streak.at
    return seconds if seconds > max_stuck else None


def recent_window(backoff_max: float) -> float:
    """How recently the latest error must have happened for the relay to count as still failing."""
    return 2 * backoff_max + PERSIST_EVERY + 5.0


def load_streak(conn: sqlite3.Connection) -> ErrorStreak | None:
    return ErrorStreak.from_json(get_state(conn, STREAK_KEY))


class StreakRecorder:
    """The relay's side: extend the streak on every error, persist it sparingly."""

    def __init__(self) -> None:
        self.streak: ErrorStreak | None = None
        self._loaded = False
        self._persisted_at = 0.0
        self._persisted: ErrorStreak | None = None

    def note(self, conn: sqlite3.Connection, error: str, checkpoint: int, now: float | None = None) -> ErrorStreak:
        if not self._loaded:
            self.streak = load_streak(conn)
            self._loaded = True
        now = time.time() if now is None else now
        streak = continue_streak(self.streak, error, checkpoint, now)
        self.streak = streak
        stored = self._persisted
        due = stored is None or stored.at != streak.at or time.monotonic() - self._persisted_at >= PERSIST_EVERY
        if due:
            with immediate(conn):
                set_state(conn, STREAK_KEY, streak.to_json())
            self._persisted, self._persisted_at = streak, time.monotonic()
        return streak


def describe(streak: ErrorStreak, seconds: float) -> str:
    return (f"relay stuck for {seconds:.0f}s: {streak.count} failures in a row and no change applied since; "
            f"last error: {streak.error[:300]}")


def streak_json(streak: ErrorStreak | None) -> dict[str, Any] | None:
    return None if streak is None else asdict(streak)
