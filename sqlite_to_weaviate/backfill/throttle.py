"""Rate limiting math for the rows/s cap, kept pure so it can be unit-tested exactly.

The limiter is cumulative (a "virtual schedule"): after ``rows`` rows since ``start``, the
earliest allowed time is ``start + rows / rate``. Sleeping until then keeps the long-run
average at the cap without accumulating rounding drift page after page, and a slow page
(lock wait, pause) is not "made up" by a burst beyond one page, because the schedule is
re-anchored whenever we fall more than one page behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


def throttle_delay(rows_done: int, rate: float | None, elapsed: float) -> float:
    """Seconds to wait so that ``rows_done`` rows took at least ``rows_done / rate`` seconds."""
    if rate is None or rate <= 0 or rows_done <= 0:
        return 0.0
    return max(0.0, rows_done / rate - elapsed)


def page_size_for_rate(page_size: int, rate: float | None, max_page_seconds: float = 1.0) -> int:
    """Never take a page bigger than ``max_page_seconds`` of the rate (smooth, not bursty)."""
    if rate is None or rate <= 0:
        return max(1, page_size)
    return max(1, min(page_size, int(rate * max_page_seconds) or 1))


def eta_seconds(remaining: int | None, rate: float | None) -> float | None:
    if remaining is None or rate is None or rate <= 0:
        return None
    return max(0, remaining) / rate


@dataclass
class Throttle:
    """Stateful wrapper: call :meth:`delay` after each page, sleep for what it returns."""

    rate: float | None
    clock: Callable[[], float] = time.monotonic
    _start: float = field(default=0.0, init=False)
    _rows: int = field(default=0, init=False)
    _started: bool = field(default=False, init=False)

    def delay(self, rows: int) -> float:
        now = self.clock()
        if not self._started:
            self._start, self._rows, self._started = now - 0.0, 0, True
        self._rows += rows
        wait = throttle_delay(self._rows, self.rate, now - self._start)
        if self.rate and (now - self._start) - self._rows / self.rate > 1.0:
            # more than a second behind schedule (we were paused or blocked): re-anchor
            self._start, self._rows = now, 0
            return 0.0
        return wait

    def reset(self) -> None:
        self._started = False
