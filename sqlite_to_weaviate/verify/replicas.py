"""Reading a replicated Weaviate cluster so that the verdict does not depend on the node asked.

On a cluster with a replication factor above 1, a gRPC read (the cursor iterator, and
every ``fetch_objects*``) asks **one replica per shard**, the local one first, whatever
consistency level it carries; the level only makes the server read-repair the objects
that replica *returned*. An object that replica lacks is never listed, and one it still
holds after a delete it missed is listed (measured on v1.35.2: through a stale node the
iterator at ALL returned 500 objects where 550 were right). A REST ``GET
/v1/objects/{class}/{id}?consistency_level=ALL`` does ask every replica, returns the
newest version (404 when the newest is a delete) and repairs the stale ones.

**A query above ONE damages data on v1.35.** Its read-repair writes the objects *as the
query returned them* to every replica with an older version: measured here, a filter by
id asking for no property left ``{}`` (no property, no vector) on the lagging replica, one
asking for the content hash left only the hash, both under the newest timestamp (the
cursor, reading whole objects, happened to repair correctly). Async replication compares timestamps only, so nothing repairs it
(Weaviate fixed this in v1.37.14 and v1.38.7, "never repair from a search result"). Seen
here: a verify --repair through one node, while the repair's QUORUM write had not yet
reached the third replica, left that replica's copy empty; the next verify through it
re-sent the row, and the same race emptied another replica, round after round
(``tests/integration/test_cluster_faults.py``). A REST read by id is safe: the server
fetches the full object from the replica that holds the newest version before repairing.

So the verifier, through whichever node it is given:

1. runs every query (the listing, the index check, sample and search reads) at **ONE**,
   which never read-repairs;
2. settles each candidate difference (an object missing, extra or stale in that listing)
   with REST reads **by id at the verify level**, never with the listing node's own
   copy; a replicated collection is always re-checked this way, even when the pipeline
   was idle during the scan (the listing is no snapshot of the cluster).

A difference therefore counts when the object *as read at the verify level* differs from
its row: at ALL that is every replica's newest version, which is what "SQLite and
Weaviate are equal at ALL" means, and it is the same answer through every node. It also
counts when the node asked keeps another copy *after* that read: a read at ALL repairs a
replica with an older version, so a copy that still differs has the same timestamp as the
others and nothing in Weaviate will repair it (an object emptied by a query's
read-repair, above, by this tool before it queried at ONE or by any other client that
queries at QUORUM or ALL). Such a copy is reported as stale through that node, and
``--repair`` re-sends the row, which overwrites every replica. What a listing through one node cannot see is a replica
that only *another* node's listing would read (a delete missed there, say): an ALL read of
that object already answers "deleted", and async replication with time-based delete
resolution removes the copy within a minute or so; a copy damaged in place is seen only
by a verify through its node. So verify through each node in turn (docs/scale-out.md).

At replication factor 1 nothing changes: one copy per object, read as before.
"""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from sqlite_to_weaviate.weaviate_adapter import WeaviateEndpoint

READ_THREADS = 8


class _LeveledCollections:
    """``client.collections`` whose handles carry one consistency level (reads *and* writes)."""

    def __init__(self, collections: Any, level: str) -> None:
        self._collections = collections
        self._level = level

    def use(self, name: str) -> Any:
        from weaviate.classes.config import ConsistencyLevel

        return self._collections.use(name).with_consistency_level(ConsistencyLevel(self._level))

    get = use

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collections, name)


class LeveledClient:
    """A Weaviate client for the verifier: queries at ONE, deletes and REST reads by id
    at ``level`` (see the module docstring for why queries never carry the level)."""

    def __init__(self, client: Any, level: str, endpoint: WeaviateEndpoint) -> None:
        self._client = client
        self.level = level
        self._endpoint = endpoint
        self._factors: dict[str, int] = {}
        self._http: httpx.Client | None = None

    @property
    def collections(self) -> _LeveledCollections:
        """Handles for queries (listings, filters, sample and search reads): always at ONE."""
        return _LeveledCollections(self._client.collections, "ONE")

    @property
    def writing_collections(self) -> _LeveledCollections:
        """Handles for the verifier's deletes (extras, unindexed objects): at ``level``."""
        return _LeveledCollections(self._client.collections, self.level)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def replication_factor(self, collection: str) -> int:
        if collection not in self._factors:
            config = self._client.collections.use(collection).config.get()
            self._factors[collection] = int(getattr(config.replication_config, "factor", 1) or 1)
        return self._factors[collection]

    def reads_by_id(self, collection: str) -> bool:
        """True when listings are not authoritative: differences are settled by REST reads by id."""
        return self.replication_factor(collection) > 1

    def _session(self) -> httpx.Client:
        if self._http is None:
            headers = {"Authorization": f"Bearer {self._endpoint.api_key.reveal()}"} if self._endpoint.api_key else {}
            self._http = httpx.Client(base_url=f"{self._endpoint.scheme}://{self._endpoint.host}:"
                                               f"{self._endpoint.http_port}/v1", headers=headers, timeout=60.0)
        return self._http

    def get_objects(self, collection: str, tenant: str | None, uuids: Iterable[uuid_mod.UUID],
                    level: str | None = None) -> dict[uuid_mod.UUID, dict[str, Any]]:
        """Properties of each object that exists as read at ``level`` (default: the verify level), by id.

        At ONE the node asked answers from its own replica when it holds one (measured:
        a stale node's copy), which is how the verifier looks at the node's own copy.
        """
        session = self._session()
        params = {"consistency_level": level or self.level}
        if tenant is not None:
            params["tenant"] = tenant

        def one(object_id: uuid_mod.UUID) -> tuple[uuid_mod.UUID, dict[str, Any] | None]:
            response = session.get(f"/objects/{collection}/{object_id}", params=params)
            if response.status_code == 404:
                return object_id, None
            if response.status_code != 200:
                raise RuntimeError(f"Weaviate answered {response.status_code} reading {collection}/{object_id} "
                                   f"at consistency {params['consistency_level']}: {response.text[:300]}")
            return object_id, dict(response.json().get("properties") or {})

        wanted = list(uuids)
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, max(1, len(wanted)))) as pool:
            return {u: props for u, props in pool.map(one, wanted) if props is not None}

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self._client.close()


def reads_by_id(client: Any, collection: str) -> bool:
    """Whether ``client`` settles differences of ``collection`` by REST reads at a consistency level."""
    return isinstance(client, LeveledClient) and client.reads_by_id(collection)
