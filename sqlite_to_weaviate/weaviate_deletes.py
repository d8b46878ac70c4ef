"""Deleting objects so that they are really gone, even the ones Weaviate half-wrote.

A write request that times out, or dies with the server, can leave an object stored but
missing from Weaviate's inverted index (seen in the soak after SIGKILLing Weaviate): the
cursor and ``exists`` see it, but no filter does, so ``delete_many`` (which matches
through a filter) reports success and leaves it in place. ``DELETE
/objects/{class}/{id}`` finds the object by its uuid instead. So every delete is a fast
``delete_many`` first, then a delete by id for each id it did not match (usually an
object that never existed; the call is idempotent). The writer and the verifier both
delete through here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

DELETE_CHUNK = 1000  # well under Weaviate's QUERY_MAXIMUM_RESULTS (10,000) per delete_many

T = TypeVar("T")


def _direct(call: Callable[[], T]) -> T:
    return call()


def delete_by_ids(collection: Any, ids: list[str], between: Callable[[], Any] = lambda: None) -> None:
    """Delete each object by its uuid, not through the index (a missing object is fine).

    One request per id, with ``between`` called between two of them: a worker passes its
    lease guard, so a long list (every object of a job after a fault) cannot outlive the
    lease unguarded and land after the relay has sent the keys again.
    """
    for n, object_id in enumerate(ids):
        if n:
            between()
        collection.data.delete_by_id(object_id)


def delete_objects(collection: Any, ids: list[str], run: Callable[[Callable[[], Any]], Any] = _direct) -> int:
    """Delete ``ids`` from one collection or tenant handle; returns how many existed.

    ``run`` wraps each request, each delete by id included (the worker passes its retry
    policy and lease guard).
    Raises :class:`DeleteIncomplete` when Weaviate reports failed deletes.
    """
    from weaviate.classes.query import Filter

    deleted = 0
    for start in range(0, len(ids), DELETE_CHUNK):
        chunk = [str(u) for u in ids[start:start + DELETE_CHUNK]]
        result = run(lambda: collection.data.delete_many(where=Filter.by_id().contains_any(chunk), verbose=True))
        if result.failed:
            raise DeleteIncomplete(f"{result.failed} of {len(chunk)} deletes failed in {collection.name}")
        matched = {str(o.uuid) for o in (result.objects or []) if o.successful}
        deleted += len(matched)
        for straggler in (u for u in chunk if u not in matched):
            run(lambda: collection.data.delete_by_id(straggler))  # noqa: B023 - called before the next
    return deleted


class DeleteIncomplete(Exception):
    """Weaviate answered that some deletes failed (retry later)."""
