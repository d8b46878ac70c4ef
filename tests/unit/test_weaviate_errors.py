"""Transient vs permanent: every row of the message table, and the structured signals
(exception type, HTTP status, gRPC status code) that come before any text."""

from __future__ import annotations

import grpc
import httpx
import pytest
import weaviate.exceptions as wex

from sqlite_to_weaviate.writer.weaviate_errors import (
    MESSAGES, Verdict, all_failed_messages, classify_exception, classify_message, grpc_code, mask_quoted,
    object_error_is_transient, rule_for,
)

T, P = Verdict.TRANSIENT, Verdict.PERMANENT


@pytest.mark.parametrize("rule", MESSAGES, ids=lambda r: r.pattern[:40])
def test_every_row_matches_its_own_example_first(rule):
    assert rule_for(rule.example) is rule
    assert classify_message(rule.example) is rule.verdict


@pytest.mark.parametrize("message", [
    "invalid integer property 'connection_count' on class 'Probe': requires an integer, the given value is 'abc'",
    "invalid number property 'timeout_ms' on class 'Probe': requires a float, the given value is 'slow'",
    "invalid text property 'connection_refused_at' on class 'Unavailable': not a string, but float64",
    "invalid date property 'leader_not_found' on class 'Eof': requires a string with a RFC3339 formatted date, "
    "but the given value is 'deadline exceeded'",
    "no such prop with name 'raft_timeout' found in class 'Probe' in the schema. Check your schema files",
])
def test_a_property_named_like_a_network_error_is_still_a_bad_row(message):
    assert classify_message(message) is P and not object_error_is_transient(message)


def test_quoted_names_and_values_are_masked():
    assert mask_quoted("""a 'connection refused' b "timeout" c""") == """a '' b "" c"""


def test_an_unknown_object_message_is_permanent_and_an_unknown_request_failure_transient():
    assert classify_message("something new went wrong") is P
    assert classify_exception(wex.WeaviateBatchError("something new went wrong")) is T
    assert classify_exception(ValueError("a bug of ours")) is P


class _Rpc(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def _wrapped(outer: Exception, code: grpc.StatusCode, details: str = "") -> Exception:
    """As the client raises it: inside ``except RpcError`` (so the RpcError is the context)."""
    try:
        try:
            raise _Rpc(code, details)
        except grpc.RpcError:
            raise outer
    except Exception as exc:  # noqa: BLE001
        return exc


@pytest.mark.parametrize("code, verdict", [
    (grpc.StatusCode.UNAVAILABLE, T), (grpc.StatusCode.DEADLINE_EXCEEDED, T), (grpc.StatusCode.CANCELLED, T),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, T), (grpc.StatusCode.ABORTED, T),
    (grpc.StatusCode.INVALID_ARGUMENT, P), (grpc.StatusCode.UNAUTHENTICATED, P), (grpc.StatusCode.NOT_FOUND, P),
])
def test_the_grpc_status_code_decides(code, verdict):
    exc = _wrapped(wex.WeaviateBatchError("whatever the text says: invalid integer property 'x'"), code)
    assert grpc_code(exc) == code.name
    assert classify_exception(exc) is verdict


def test_grpc_unknown_is_read_from_the_servers_details():
    hex_error = _wrapped(wex.WeaviateDeleteManyError("[UNKNOWN] batch delete reply: failed to parse hex string to "
                                                     "integer"), grpc.StatusCode.UNKNOWN)
    assert classify_exception(hex_error) is T
    rst = _wrapped(wex.WeaviateBatchError("Received RST_STREAM with error code 8"), grpc.StatusCode.UNKNOWN)
    assert classify_exception(rst) is T


@pytest.mark.parametrize("status, verdict", [(429, T), (500, T), (503, T), (504, T), (400, P), (404, P), (422, P)])
def test_the_http_status_decides(status, verdict):
    response = httpx.Response(status, json={"error": [{"message": "connection timeout"}]},
                              request=httpx.Request("GET", "http://127.0.0.1:8080/v1/objects"))
    assert classify_exception(wex.UnexpectedStatusCodeError("call", response)) is verdict


@pytest.mark.parametrize("exc", [
    wex.WeaviateConnectionError("refused"), wex.WeaviateTimeoutError("slow"), wex.WeaviateRetryError("x", 3),
    ConnectionRefusedError(111, "Connection refused"), TimeoutError(), httpx.ConnectError("refused"),
])
def test_network_exception_types_are_transient(exc):
    assert classify_exception(exc) is T


def test_permission_errors_are_permanent():
    response = httpx.Response(403, request=httpx.Request("GET", "http://127.0.0.1:8080/v1/objects"))
    assert classify_exception(wex.InsufficientPermissionsError(response)) is P


def test_every_object_failing_is_read_object_by_object():
    bad = wex.WeaviateInsertManyAllFailedError(
        "Here is the set of all errors: invalid integer property 'connection_count' on class 'C': requires an integer"
        "\nno such prop with name 'timeout' found in class 'C' in the schema")
    assert len(all_failed_messages(str(bad))) == 2 and classify_exception(bad) is P
    mixed = wex.WeaviateInsertManyAllFailedError(
        "Here is the set of all errors: broadcast: cannot reach enough replicas\ninvalid integer property 'a' on class "
        "'C': requires an integer")
    assert classify_exception(mixed) is T  # retry; the bad row is isolated once the cluster answers
    leader = wex.WeaviateInsertManyAllFailedError("Here is the set of all errors: failed to execute query: leader not "
                                                  "found, can not resolve nodes [s2w-n2,s2w-n1]")
    assert classify_exception(leader) is T
