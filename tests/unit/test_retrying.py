"""The one retry/backoff helper: the delay curve, the guard before every try, what is and
is not retried, and the worker's policy on top of it."""

from __future__ import annotations

import pytest
import weaviate.exceptions as wex

from sqlite_to_weaviate.retrying import RetriesExhausted, backoff_delay, call_with_retries
from sqlite_to_weaviate.writer.weaviate_apply import Fenced, RetryPolicy, TransientError


def test_backoff_doubles_from_base_up_to_the_cap():
    assert [backoff_delay(n, 0.5, 5.0) for n in range(0, 7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_delay(10_000, 1.0, 30.0) == 30.0  # no overflow after a very long outage


def _flaky(failures: list[BaseException], value: str = "ok"):
    calls = []

    def request() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return value

    return request, calls


def test_retries_with_the_backoff_curve_and_guards_every_try():
    sleeps: list[float] = []
    guards: list[int] = []
    request, calls = _flaky([ConnectionError("a"), ConnectionError("b")])
    result = call_with_retries(request, retries=3, base=0.5, cap=0.8, retry_if=lambda e: True,
                               before_each=lambda: guards.append(1), sleep=sleeps.append)
    assert result == "ok" and len(calls) == 3 and len(guards) == 3 and sleeps == [0.5, 0.8]


def test_gives_up_after_the_retries_and_names_the_last_error():
    request, calls = _flaky([ConnectionError(str(i)) for i in range(5)])
    with pytest.raises(RetriesExhausted) as info:
        call_with_retries(request, retries=2, base=0.1, cap=1, retry_if=lambda e: True, sleep=lambda s: None)
    assert len(calls) == 3 and info.value.tries == 3 and str(info.value.last) == "2"


def test_a_refused_error_and_a_guard_error_propagate_at_once():
    request, calls = _flaky([ValueError("bad row")])
    with pytest.raises(ValueError):
        call_with_retries(request, retries=5, base=0.1, cap=1, retry_if=lambda e: not isinstance(e, ValueError),
                          sleep=lambda s: pytest.fail("must not wait"))
    assert len(calls) == 1

    def fenced() -> None:
        raise Fenced("lease lost")

    with pytest.raises(Fenced):
        call_with_retries(lambda: "never", retries=5, base=0.1, cap=1, retry_if=lambda e: True, before_each=fenced,
                          sleep=lambda s: pytest.fail("must not wait"))


def test_the_worker_policy_counts_the_tries_it_repeats_for_the_ack():
    from sqlite_to_weaviate.writer.weaviate_apply import RetryWitness

    witness = RetryWitness()
    policy = RetryPolicy(max_retries=3, retry_delay=0.01, backoff_max=0.01, witness=witness)
    assert policy.run(lambda: "ok", guard=lambda: None) == "ok" and witness.retried == 0
    request, calls = _flaky([wex.WeaviateTimeoutError("deadline")])  # no answer, then success
    policy.run(request, guard=lambda: None)
    assert len(calls) == 2 and witness.retried == 1
    request, calls = _flaky([wex.WeaviateInsertManyAllFailedError(
        "Here is the set of all errors: invalid integer property 'n' on class 'C'")])
    with pytest.raises(wex.WeaviateInsertManyAllFailedError):
        policy.run(request, guard=lambda: None)
    assert witness.retried == 1  # a refusal is an answer: not repeated, not counted


def test_the_worker_policy_retries_transient_weaviate_errors_only():
    policy = RetryPolicy(max_retries=2, retry_delay=0.01, backoff_max=0.01)
    request, calls = _flaky([wex.WeaviateConnectionError("down")] * 5)
    with pytest.raises(TransientError, match="WeaviateConnectionError"):
        policy.run(request, guard=lambda: None)
    assert len(calls) == 3
    request, calls = _flaky([wex.WeaviateInsertManyAllFailedError(
        "Here is the set of all errors: invalid integer property 'connection_count' on class 'C'")])
    with pytest.raises(wex.WeaviateInsertManyAllFailedError):
        policy.run(request, guard=lambda: None)
    assert len(calls) == 1  # a refused row is not retried: it is isolated and dead-lettered
