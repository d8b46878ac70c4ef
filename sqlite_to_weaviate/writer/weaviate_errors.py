"""Is a Weaviate failure bad weather (retry later) or a bad row (dead-letter it)?

Getting this wrong either way hurts: a permanent rejection taken for transient is retried
forever and stalls its partition; a transient failure taken for permanent parks a good row
as a dead letter. So the answer comes from structured signals first:

1. the exception's type (connection, timeout, closed client: transient);
2. the HTTP status of a REST answer (408, 429, 5xx: transient; other 4xx: permanent);
3. the gRPC status code behind a gRPC failure (:data:`TRANSIENT_GRPC_CODES`,
   :data:`PERMANENT_GRPC_CODES`); the client wraps the ``grpc.RpcError`` as the
   exception's ``__context__``, so it is found in the chain.

Only where the server answers in prose -- a per-object error in a batch reply, every
object failing at once (``WeaviateInsertManyAllFailedError``), or a gRPC ``UNKNOWN`` whose
details are the server's message -- is the text read, against ONE table of the server's
own messages (:data:`MESSAGES`), each row with a message seen from the real server (v1.35.2;
``tests/integration/test_weaviate_errors.py`` produces them again) or quoted from its
source. Quoted parts (property, class and node names, values) are masked before matching,
so a property called ``connection_count`` or ``timeout_ms`` cannot look like a network
error. A per-object message no row knows is permanent (the server named this object;
the row is parked with the reason and can be replayed); a whole-request failure no signal
explains is transient (the job is handed back and re-dispatched).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Verdict(enum.Enum):
    TRANSIENT = "transient"   # try again later; the row is fine
    PERMANENT = "permanent"   # this row (or request) will never be accepted as it is


@dataclass(frozen=True)
class Rule:
    verdict: Verdict
    pattern: str        # a regex over the message with quoted parts masked ('' and "")
    example: str        # the server's message (tests check the rule matches it)
    seen: str           # where the message comes from

    def matches(self, masked: str) -> bool:
        return re.search(self.pattern, masked, re.IGNORECASE) is not None


T, P = Verdict.TRANSIENT, Verdict.PERMANENT
_RUN, _SRC, _SOAK, _CLUSTER = ("real server v1.35.2", "server source v1.35.2", "soak: a node starting up",
                               "3-node cluster with nodes down (notes/scale-out-research.md)")

MESSAGES: tuple[Rule, ...] = (
    # --- the object itself is invalid: permanent (checked first)
    Rule(P, r"^invalid [a-z]+( array)? property '' on class ''",
         "invalid integer property 'connection_count' on class 'Probe': requires an integer, the given value is 'abc'",
         _RUN),
    Rule(P, r"^no such prop with name '' found in class ''",
         "no such prop with name 'no_such' found in class 'Probe' in the schema. Check your schema files for which "
         "properties in this class are available", _RUN),
    Rule(P, r"new node has a vector with length \d+\. Existing nodes have vectors with length \d+",
         "Validate vector index default for target vector 719358f7-d473-46e2-b5cc-f8e9a798e552: new node has a vector "
         "with length 2. Existing nodes have vectors with length 3: vector dimensions do not match the index "
         "dimensions", _RUN),
    Rule(P, r"vector lengths don't match", "vector lengths don't match: 3 vs 8", _SRC),
    Rule(P, r"^class '' not present in schema", "class 'NoSuchCollection' not present in schema", _RUN),
    Rule(P, r"^property \S+ does not exist for class", "property nope does not exist for class Probe", _RUN),
    Rule(P, r"^ref batch: object with id \S+ not found",
         "ref batch: object with id 7babd3e7-b29c-4386-8633-222db8ff2628 not found", _RUN),
    # --- the cluster or the node is not able to answer right now: transient
    Rule(T, r"could not find index for class",
         "could not find index for class Message. It might have been deleted in the meantime", _SOAK),
    Rule(T, r"deleted in the meantime", "object was deleted in the meantime", _SOAK),
    Rule(T, r"resolve node name", 'resolve node name "s2w-c2cf9c1b" to host', _SOAK),
    Rule(T, r"cannot reach enough replicas", "broadcast: cannot reach enough replicas", _CLUSTER),
    Rule(T, r"impossible to satisfy consistency level",
         "impossible to satisfy consistency level (2) > available replicas (1)", _SRC),
    Rule(T, r"no (read|write) replica found", "no write replica found", _SRC),
    Rule(T, r"read repair error", "read repair error", _SRC),
    Rule(T, r"leader not found", "failed to execute query: leader not found, can not resolve nodes [s2w-n2,s2w-n1]",
         _CLUSTER),
    Rule(T, r"Received RST_STREAM", "Received RST_STREAM with error code 8", _CLUSTER),
    Rule(T, r"batch delete reply: failed to parse hex string", "batch delete reply: failed to parse hex string to "
         "integer", _CLUSTER),
    Rule(T, r"deadline exceeded", "context deadline exceeded", _RUN),
    Rule(T, r"context canceled", "context canceled", _SRC),
    Rule(T, r"code = (Canceled|DeadlineExceeded)\b|client connection is closing",  # Unavailable: rule below
         "failed to execute query: rpc error: code = Canceled desc = grpc: the client connection is closing",
         "CI: a node SIGKILLed mid-replay (test_node_sigkilled_mid_backfill_and_mid_replay_ends_equal_at_all)"),
    Rule(T, r"connection refused|connection reset|broken pipe|failed to connect|i/o timeout|no such host",
         "dial tcp 127.0.0.1:8080: connect: connection refused", _RUN),
    Rule(T, r"\bunavailable\b|not ready|shutting down|too many requests|resource exhausted",
         "shard not found or not ready", _SRC),
    Rule(T, r"\bEOF\b", "unexpected EOF", _SRC),
)

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_ALL_FAILED_PREFIX = "Every object failed during insertion. Here is the set of all errors: "


def mask_quoted(message: str) -> str:
    """The message with every quoted part emptied: names and values cannot match a rule."""
    return _QUOTED.sub(lambda m: m.group(0)[0] * 2, message)


def rule_for(message: str) -> Rule | None:
    masked = mask_quoted(message)
    return next((rule for rule in MESSAGES if rule.matches(masked)), None)


def classify_message(message: str, *, unknown: Verdict = Verdict.PERMANENT) -> Verdict:
    """A message of the server's (one object's error, or a request's details)."""
    rule = rule_for(message)
    return rule.verdict if rule is not None else unknown


def object_error_is_transient(message: str) -> bool:
    """A per-object error from a batch reply: transient only if the table says so."""
    return classify_message(message) is Verdict.TRANSIENT


def all_failed_messages(error_text: str) -> list[str]:
    """The distinct per-object messages inside ``WeaviateInsertManyAllFailedError``."""
    return [m for m in error_text.removeprefix(_ALL_FAILED_PREFIX).split("\n") if m.strip()]


def all_failed_reason(error_text: str) -> str:
    return error_text.removeprefix(_ALL_FAILED_PREFIX)


TRANSIENT_GRPC_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "ABORTED"})
PERMANENT_GRPC_CODES = frozenset({"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
                                  "UNAUTHENTICATED", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED"})
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


def grpc_code(exc: BaseException) -> str | None:
    """The name of the gRPC status code behind ``exc`` (itself or its cause/context chain)."""
    import grpc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, grpc.RpcError) and callable(getattr(current, "code", None)):
            try:
                code = current.code()
            except Exception:  # noqa: BLE001 - a half-built call may raise instead of answering
                code = None
            if isinstance(code, grpc.StatusCode):
                return code.name
        current = current.__cause__ or current.__context__
    return None


def classify_exception(exc: BaseException) -> Verdict:
    """Whether a failed request is worth trying again (see the module docstring)."""
    import httpx
    import weaviate.exceptions as wex

    if isinstance(exc, wex.WeaviateInsertManyAllFailedError):  # the server answered for every object
        messages = all_failed_messages(str(exc))
        return T if any(object_error_is_transient(m) for m in messages) else P
    if isinstance(exc, (wex.WeaviateConnectionError, wex.WeaviateTimeoutError, wex.WeaviateGRPCUnavailableError,
                        wex.WeaviateRetryError, wex.WeaviateStartUpError, wex.WeaviateClosedClientError,
                        httpx.TransportError, ConnectionError, TimeoutError, OSError)):
        return T
    if isinstance(exc, (wex.InsufficientPermissionsError, wex.AuthenticationFailedError, wex.WeaviateInvalidInputError,
                        wex.WeaviateInsertInvalidPropertyError, wex.WeaviateBatchValidationError,
                        wex.WeaviateUnsupportedFeatureError)):  # the request itself is wrong
        return P
    code = grpc_code(exc)
    if code in TRANSIENT_GRPC_CODES:
        return T
    if code in PERMANENT_GRPC_CODES:
        return P
    if isinstance(exc, wex.UnexpectedStatusCodeError) and code is None:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            return T if status in TRANSIENT_HTTP else P
    # gRPC UNKNOWN / INTERNAL, or no code: the server's details decide; unexplained = bad weather
    details = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, wex.WeaviateBaseError) or code is not None:
        return classify_message(str(details), unknown=T)
    return classify_message(str(details), unknown=P)  # not from Weaviate at all: a bug, do not retry it
