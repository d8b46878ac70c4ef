"""Which consistency level each of the verifier's handles carries (verify/replicas.py).

On Weaviate 1.35 a query above ONE read-repairs lagging replicas with the query's
projection, so every query handle must be at ONE; deletes go at the verify level.
The cluster test proves the effect on real replicas; this pins every handle the verifier
builds, including the ones that test does not reach (search checks, the iterator fallback).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_to_weaviate.verify import target
from sqlite_to_weaviate.verify.object_pages import ObjectPages
from sqlite_to_weaviate.verify.replicas import LeveledClient
from sqlite_to_weaviate.verify.repair import _handles
from sqlite_to_weaviate.verify.search import SearchContext, _handle as search_handle
from tests.unit.test_verify_units import table_mapping


@dataclass(frozen=True)
class Handle:
    """A stand-in collection handle that remembers its level and tenant."""

    name: str
    level: str | None = None
    tenant: str | None = None

    def with_consistency_level(self, level) -> "Handle":
        return Handle(self.name, level.value, self.tenant)

    def with_tenant(self, tenant: str) -> "Handle":
        return Handle(self.name, self.level, tenant)


class Collections:
    def use(self, name: str) -> Handle:
        return Handle(name)


class Client:
    collections = Collections()


def leveled(level: str = "ALL") -> LeveledClient:
    return LeveledClient(Client(), level, endpoint=None)  # type: ignore[arg-type]


def test_every_query_handle_of_the_verifier_is_at_one_whatever_the_verify_level():
    table = table_mapping()
    for level in ("ONE", "QUORUM", "ALL"):
        client = leveled(level)
        assert client.level == level  # reads by id (REST) still carry it
        assert target._handle(client, table, None).level == "ONE"
        assert target._handle(client, table, "t1") == Handle(table.collection, "ONE", "t1")
        assert search_handle(SearchContext(client, "Cache", {}), table, None).level == "ONE"
        pages = ObjectPages(target._handle(client, table, None), page_size=10, filter_limit=10, fast=False)
        assert pages._handle.level == "ONE"


def test_the_verifiers_deletes_carry_the_verify_level():
    table = table_mapping()
    client = leveled("QUORUM")
    assert target._handle(client, table, None, writing=True).level == "QUORUM"
    assert [h.level for h in _handles(client, table)] == ["QUORUM"]


def test_a_plain_client_gets_plain_handles_for_queries_and_deletes():
    table = table_mapping()
    assert target._handle(Client(), table, None) == Handle(table.collection)
    assert target._handle(Client(), table, None, writing=True) == Handle(table.collection)
