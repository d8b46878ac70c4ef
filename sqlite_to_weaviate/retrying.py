"""Retries and backoff, in one place, on tenacity.

Two kinds of waiting share one curve (``retry_delay`` doubling per consecutive failure,
at most ``backoff_max``): a worker retrying a Weaviate request inside one job
(:func:`call_with_retries`), and the relay backing off a partition or its own loop after a
failure (:func:`backoff_delay`, a pure function the relay's scheduler calls with its own
failure count and clock).

Why tenacity rather than stamina (which is built on it): the worker must run its lease
guard before every try and stop at once when the guard fences it, tests must be able to
replace the sleep, and the relay needs the delay as a number rather than a decorated call;
tenacity exposes all three (``Retrying(before=..., sleep=...)``, its wait strategies as
plain callables), while stamina deliberately hides them and switches itself off in tests
through global state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

T = TypeVar("T")


def _wait(base: float, cap: float) -> wait_exponential:
    return wait_exponential(multiplier=base, max=cap, exp_base=2, min=0)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after the ``attempt``-th consecutive failure (1, 2, ...):
    ``base * 2 ** (attempt - 1)``, never more than ``cap`` (0 before any failure)."""
    if attempt < 1:
        return 0.0
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return float(_wait(base, cap)(state))


class RetriesExhausted(Exception):
    """Every try failed with a retryable error; ``last`` is the final one."""

    def __init__(self, last: BaseException, tries: int) -> None:
        super().__init__(f"{tries} tries failed; last: {type(last).__name__}: {last}")
        self.last = last
        self.tries = tries


def call_with_retries(request: Callable[[], T], *, retries: int, base: float, cap: float,
                      retry_if: Callable[[BaseException], bool], before_each: Callable[[], None] = lambda: None,
                      sleep: Callable[[float], Any] = time.sleep) -> T:
    """``request()``; on an error ``retry_if`` accepts, wait :func:`backoff_delay` and try
    again, ``retries`` times at most. ``before_each`` runs before every try; whatever it
    raises (and any error ``retry_if`` refuses) propagates at once. Raises
    :class:`RetriesExhausted` when the last try failed too."""

    checked = {"guard": False}  # an error from before_each is never retried

    def retryable(exc: BaseException) -> bool:
        return not checked["guard"] and retry_if(exc)

    def guarded() -> T:
        checked["guard"] = True
        before_each()
        checked["guard"] = False
        return request()

    retrying = Retrying(stop=stop_after_attempt(retries + 1), wait=_wait(base, cap),
                        retry=retry_if_exception(retryable), sleep=sleep, reraise=False)
    try:
        return retrying(guarded)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        assert last is not None
        raise RetriesExhausted(last, exc.last_attempt.attempt_number) from last
