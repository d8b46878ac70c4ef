"""Apply one job's upserts and deletes to Weaviate, separating bad rows from bad weather.

Weaviate batch calls do not raise for rejected objects: every result is read. A rejection
that names the object (wrong type, invalid value) is permanent: that row is reported for
the dead-letter table and the rest of the batch lands. A failure of the whole request
(connection refused, timeout, unavailable) is transient (``weaviate_errors`` decides which
is which): it is retried with exponential
backoff, and if it outlasts the retries the job reports ``transient`` so the relay
re-dispatches it later. A timed-out request may still have been written; re-applying it
is harmless because every write is an idempotent full-image upsert or a delete.

Two facts about Weaviate, measured in the soak with SIGKILLed servers, shape the writes:

* A request that times out or dies with the server can leave an object *half-written*:
  stored (the cursor and ``exists`` see it) but missing from the inverted index, so no
  filter, search or filtered delete finds it, and an upsert of the same content does not
  repair the index (only changed properties are re-indexed). So an object whose last
  write had an unknown outcome is deleted by id and inserted again ("replace").
* ``delete_many`` finds objects through the index, so it silently skips such an object.
  Deletes go through ``sqlite_to_weaviate.weaviate_deletes``, which deletes by id what
  ``delete_many`` did not match.

On a replicated cluster every write carries the configured consistency level (QUORUM by
default), and the errors of a cluster that lost nodes are weather, not bad rows: with two
of three nodes down a QUORUM write fails per object with ``broadcast: cannot reach
enough replicas``, or the whole request with ``leader not found``, a gRPC
``RST_STREAM``, or (deletes) ``failed to parse hex string to integer``. All of these are
transient (``weaviate_errors.MESSAGES``, docs/scale-out.md); dead-lettering them would
drop good rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate.retrying import RetriesExhausted, call_with_retries
from sqlite_to_weaviate.weaviate_deletes import DeleteIncomplete, delete_by_ids, delete_objects
from sqlite_to_weaviate.writer.payload import Delete
from sqlite_to_weaviate.writer.weaviate_errors import (
    Verdict, all_failed_reason, classify_exception, object_error_is_transient,
)

ALL_TENANTS = "*"


class TransientError(Exception):
    """Weaviate could not be reached or did not answer in time; try again later."""


class Fenced(Exception):
    """This job lost its lease or was superseded: it must not write anything more."""


def collection_handle(client: Any, name: str, consistency: str | None) -> Any:
    """The collection, writing and reading at ``consistency`` (ONE/QUORUM/ALL; None = server default)."""
    collection = client.collections.use(name)
    if consistency:
        from weaviate.classes.config import ConsistencyLevel

        collection = collection.with_consistency_level(ConsistencyLevel(consistency))
    return collection


class RetryWitness:
    """Counts one job's requests that failed transiently and were tried again.

    Such a request may have had no answer (a timeout, a dropped connection) and still be
    applied by the server later, after the try that succeeded and after later jobs: a
    replace's delete landing last leaves the object missing. A job that saw one reports
    its ack as ``unsure``, and the relay sends its keys once more after the write horizon.
    """

    def __init__(self) -> None:
        self.retried = 0


@dataclass(frozen=True)
class RetryPolicy:
    """How a job retries a Weaviate request (the worker's settings; ``sqlite_to_weaviate.retrying``)."""

    max_retries: int = 3
    retry_delay: float = 1.0
    backoff_max: float = 30.0
    witness: RetryWitness | None = field(default=None, compare=False)  # this job's retries, if counted

    def run(self, request: Callable[[], Any], *, guard: Callable[[], None]) -> Any:
        """Call ``request``; on a transient failure wait and retry. ``guard`` runs before each try."""
        try:
            return call_with_retries(request, retries=self.max_retries, base=self.retry_delay, cap=self.backoff_max,
                                     retry_if=self._worth_retrying, before_each=guard)
        except RetriesExhausted as exc:
            raise TransientError(f"{type(exc.last).__name__}: {exc.last}") from exc.last

    def _worth_retrying(self, exc: BaseException) -> bool:
        worth = not isinstance(exc, Fenced) and classify_exception(exc) is Verdict.TRANSIENT
        if worth and self.witness is not None:
            self.witness.retried += 1
        return worth


def apply_upserts(
    client: Any, upserts: list[dict[str, Any]], policy: RetryPolicy, guard: Callable[[], None],
    replace: set[str] | frozenset[str] = frozenset(), consistency: str | None = None,
    request_objects: int | None = None,
) -> dict[str, str]:
    """Upsert full object images; returns uuid -> reason for objects Weaviate rejected.

    Two phases: objects first, without references (Weaviate refuses an object whose
    reference target does not exist yet, and targets may arrive in another job), then the
    references in one batch (accepted for targets that arrive later). Phase 1 replaces
    the whole object, dropping old references, so phase 2 never duplicates one: re-applying
    a job is harmless. Objects in ``replace`` are deleted by id before they are inserted
    (see the module docstring).

    Objects go in requests of at most ``request_objects`` (None: one request per
    collection). Weaviate (v1.35, synchronous indexing) inserts the vectors of every
    request through one first-come-first-served queue per server, served by
    1.5 x GOMAXPROCS goroutines, so a small live request waits behind every object of the
    history requests already sent: with 1,000,000 objects indexed, 200-object requests
    from two workers kept a 10-object live request waiting 0.4-1 s. A job carries each
    uuid once, so splitting it cannot reorder two writes to one object.
    """
    from weaviate.classes.data import DataObject, DataReference

    rejected: dict[str, str] = {}
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for obj in upserts:
        groups[(obj["collection"], obj.get("tenant"))].append(obj)
    for (collection_name, tenant), objects in groups.items():
        collection = collection_handle(client, collection_name, consistency)
        if tenant is not None:
            collection = collection.with_tenant(tenant)
        step = request_objects or len(objects)
        for start in range(0, len(objects), step):
            chunk = objects[start:start + step]
            data = [DataObject(properties=o["properties"], uuid=o["uuid"], vector=o.get("vector")) for o in chunk]
            suspect = {str(o["uuid"]) for o in chunk if str(o["uuid"]) in replace}
            rejected.update(_insert(collection, data, chunk, policy, guard, suspect))
        references = [
            DataReference(from_property=prop, from_uuid=o["uuid"], to_uuid=targets)
            for o in objects if str(o["uuid"]) not in rejected
            for prop, targets in (o.get("references") or {}).items() if targets
        ]
        if references:
            result = policy.run(lambda: collection.data.reference_add_many(references), guard=guard)
            for index, error in (result.errors or {}).items():
                message = error.message
                if object_error_is_transient(message):
                    raise TransientError(f"reference batch failed transiently: {message}")
                rejected.setdefault(str(references[index].from_uuid), f"reference rejected: {message}")
    return rejected


def _insert(collection: Any, data: list[Any], objects: list[dict[str, Any]], policy: RetryPolicy,
            guard: Callable[[], None], suspect: set[str]) -> dict[str, str]:
    """insert_many with per-object error triage: permanent ones reported, transient ones retried.

    When every object of a request fails, the client raises instead of returning per-object
    errors; for a permanent reason the request is split in halves until the bad objects are
    isolated, so one bad row never holds back its batch. ``suspect`` objects are replaced
    (deleted by id, then inserted); a request that fails without an answer makes all of its
    objects suspect for the next try.
    """
    from weaviate.exceptions import WeaviateInsertManyAllFailedError

    def attempt() -> Any:
        if suspect:  # every request guarded (the retry policy guards the try, so the first)
            delete_by_ids(collection, sorted(suspect), between=guard)
            guard()
        try:
            result = collection.data.insert_many(data)
        except WeaviateInsertManyAllFailedError:
            raise  # the server answered for every object: nothing half-written
        except Exception:
            suspect.update(str(o["uuid"]) for o in objects)  # no answer: the outcome is unknown
            raise
        suspect.clear()
        return result

    try:
        result = policy.run(attempt, guard=guard)
    except WeaviateInsertManyAllFailedError as exc:
        message = str(exc)
        if classify_exception(exc) is Verdict.TRANSIENT:
            raise TransientError(message) from exc
        if len(data) == 1:
            return {str(objects[0]["uuid"]): all_failed_reason(message)}
        half = len(data) // 2
        first = {str(o["uuid"]) for o in objects[:half]}
        rejected = _insert(collection, data[:half], objects[:half], policy, guard, suspect & first)
        rejected.update(_insert(collection, data[half:], objects[half:], policy, guard, suspect - first))
        return rejected
    errors = {index: error.message for index, error in (result.errors or {}).items()}
    if errors and all(object_error_is_transient(m) for m in errors.values()):
        raise TransientError(f"{len(errors)} objects failed transiently, e.g. {next(iter(errors.values()))}")
    rejected = {str(objects[i]["uuid"]): m for i, m in errors.items() if not object_error_is_transient(m)}
    retry = [data[i] for i, m in errors.items() if object_error_is_transient(m)]
    if retry:
        again = policy.run(lambda: collection.data.insert_many(retry), guard=guard)
        if again.errors:
            raise TransientError(f"{len(again.errors)} objects still failing after retry")
    return rejected


def apply_deletes(client: Any, deletes: list[Delete], policy: RetryPolicy, guard: Callable[[], None],
                  consistency: str | None = None) -> None:
    """Delete objects by id in chunks; a missing object is already deleted (idempotent)."""
    groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for d in deletes:
        groups[(d.collection, d.tenant)].append(d.uuid)
    for (collection_name, tenant), ids in groups.items():
        base = collection_handle(client, collection_name, consistency)
        if not policy.run(lambda: base.exists(), guard=guard):
            # A starting server may not know its schema yet: "no such collection" counts only
            # from a node that says it is ready.
            if not policy.run(lambda: client.is_ready(), guard=guard):
                raise TransientError(f"Weaviate is not ready (collection {collection_name} not found yet)")
            continue  # collection gone (rollback / never created): nothing to delete
        if tenant == ALL_TENANTS:
            tenants = list(policy.run(lambda: base.tenants.get(), guard=guard))
            targets = [base.with_tenant(t) for t in tenants]
        elif tenant is not None:
            targets = [base.with_tenant(tenant)]
        else:
            targets = [base]
        for target in targets:
            try:
                delete_objects(target, ids, run=lambda call: policy.run(call, guard=guard))
            except DeleteIncomplete as exc:
                raise TransientError(str(exc)) from exc
