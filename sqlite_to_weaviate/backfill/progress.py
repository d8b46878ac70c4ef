"""Progress for humans and machines: tqdm bars on a TTY, structured log lines otherwise.

Both show the same figures the checkpoint stores (rows done / total, rows/s, ETA), so what
``status`` prints, what the log says and what the bar shows always agree; and, apart from
them, the two lanes (invariant 11): the live lag (age of the oldest app change not yet in
Weaviate) and how much history is queued but not yet applied.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from sqlite_to_weaviate.logs import get_logger


@dataclass(frozen=True)
class ProgressEvent:
    table: str
    rows_done: int          # cumulative for the table (across resumed runs)
    total: int | None
    rows_per_second: float | None
    eta_seconds: float | None
    done: bool = False
    paused: str | None = None   # why we are waiting, if we are
    page_after: tuple | None = None   # the page just committed: keys in (page_after, page_last]
    page_last: tuple | None = None
    page_rows: int = 0
    live_lag_s: float | None = None   # age of the oldest unapplied live change (None: none waits)
    queued: int | None = None         # history keys in the bulk lane not yet applied


ProgressCallback = Callable[[ProgressEvent], None]


def lanes_text(event: ProgressEvent) -> str:
    """The lanes apart, for the bar: "live lag 0.4s · 1,800 queued"."""
    lag = "live lag -" if event.live_lag_s is None else f"live lag {event.live_lag_s:.1f}s"
    return lag if event.queued is None else f"{lag} · {event.queued:,} queued"


class ProgressDisplay:
    """One tqdm bar per table when ``stream`` is a TTY, else throttled structlog events."""

    def __init__(self, *, stream: TextIO | None = None, tty: bool | None = None, log_interval: float = 5.0,
                 callback: ProgressCallback | None = None, activity: str = "backfill") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.activity = activity    # names the log events: "backfill progress", "dry run progress"
        self.tty = self.stream.isatty() if tty is None else tty
        self.log_interval = log_interval
        self.callback = callback
        self.log = get_logger("s2w.backfill")
        self._bars: dict[str, Any] = {}
        self._last_log: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, event: ProgressEvent) -> None:
        if self.callback is not None:
            self.callback(event)
        with self._lock:
            if self.tty:
                self._bar(event)
            else:
                self._log(event)

    def _bar(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.table)
        if bar is None:
            bar = tqdm(total=event.total, desc=event.table, unit="row", unit_scale=True, file=self.stream,
                       position=len(self._bars), leave=True, dynamic_ncols=True, initial=event.rows_done)
            self._bars[event.table] = bar
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        bar.n = event.rows_done
        bar.set_postfix_str(lanes_text(event) + (f" · paused: {event.paused}" if event.paused else ""), refresh=False)
        bar.refresh()
        if event.done:
            bar.close()

    def _log(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if not event.done and now - self._last_log.get(event.table, 0.0) < self.log_interval:
            return
        self._last_log[event.table] = now
        fields = dict(table=event.table, rows_done=event.rows_done, total=event.total,
                      rows_per_second=None if event.rows_per_second is None else round(event.rows_per_second, 1),
                      eta_seconds=None if event.eta_seconds is None else round(event.eta_seconds, 1),
                      live_lag_s=event.live_lag_s, queued=event.queued)
        if event.paused:
            self.log.info(f"{self.activity} paused", reason=event.paused, **fields)
        elif event.done:
            self.log.info(f"{self.activity} table done", **fields)
        else:
            self.log.info(f"{self.activity} progress", **fields)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
