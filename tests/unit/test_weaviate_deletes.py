"""Deletes by id are guarded one request at a time (a worker's lease guard runs between them)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sqlite_to_weaviate.weaviate_deletes import delete_by_ids, delete_objects
from sqlite_to_weaviate.writer.weaviate_apply import Fenced


class _Collection:
    """Records the requests: the shape of weaviate-client's collection.data calls used here."""

    name = "C"

    def __init__(self, matched: set[str] = frozenset()) -> None:
        self.requests: list[tuple[str, object]] = []
        self.data = SimpleNamespace(delete_by_id=self._delete_by_id, delete_many=self._delete_many)
        self._matched = set(matched)

    def _delete_by_id(self, object_id: str) -> bool:
        self.requests.append(("by_id", object_id))
        return True

    def _delete_many(self, where, verbose: bool):  # noqa: ANN001 - a weaviate Filter
        self.requests.append(("many", None))
        objects = [SimpleNamespace(uuid=u, successful=True) for u in sorted(self._matched)]
        return SimpleNamespace(failed=0, objects=objects)


def test_a_lost_lease_stops_a_long_list_of_deletes_between_two_requests():
    collection = _Collection()
    guards = []

    def guard() -> None:
        guards.append(1)
        if len(guards) > 3:
            raise Fenced("lease expired locally")

    with pytest.raises(Fenced):
        delete_by_ids(collection, [f"u{i}" for i in range(100)], between=guard)
    assert collection.requests == [("by_id", f"u{i}") for i in range(4)]  # the caller guarded the first


def test_each_straggler_of_a_filtered_delete_is_a_request_of_its_own():
    a, b, c = (f"00000000-0000-0000-0000-00000000000{n}" for n in (1, 2, 3))
    collection = _Collection(matched={a})
    wrapped = []

    def run(call):  # noqa: ANN001 - the worker's retry policy and guard
        wrapped.append(1)
        return call()

    assert delete_objects(collection, [a, b, c], run=run) == 1
    assert collection.requests == [("many", None), ("by_id", b), ("by_id", c)]
    assert len(wrapped) == 3  # the filtered delete, then each delete by id
