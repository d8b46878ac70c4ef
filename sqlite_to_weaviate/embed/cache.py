"""The embedding cache: one Weaviate collection every worker on every host can read.

Why Weaviate and not Redis: the cache must survive a Redis wipe (else every wipe
re-embeds everything, at a price per token) and must not compete with RQ's keys for
Redis memory; every worker already talks to Weaviate, and the vectors end up there
anyway, so the cache adds no new trust boundary. A lookup of 64 entries costs 5-8 ms.

An entry per (embedder id, SHA-256 of the exact input text): uuid
``uuid5(CACHE_NAMESPACE, "<embedder id>\\0<text sha256>")``, properties ``embedder``,
``textSha256``, ``dims`` and ``vec`` (a BLOB of little-endian float32). The collection
has no vector index. Every hit is checked before use (its key properties, its length, finite
values): an answer from the network is untrusted, and a bad entry counts as a miss.

Bounded by :func:`prune`, run by the sidecar's periodic check and by ``sqlite-to-weaviate
embeddings prune``: entries older than ``max_age_days`` go first, then the oldest beyond
``max_entries`` (first in, first out by last write; an entry evicted while still in use is
computed again once and written back). Weaviate's own object TTL is not relied on: it
deletes only on servers whose operator set ``OBJECTS_TTL_DELETE_SCHEDULE``.
"""

from __future__ import annotations

import base64
import time
import uuid as uuid_mod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .text import cache_uuid, float32_bytes, from_float32_bytes, valid_vector

LOOKUP_CHUNK = 500
PRUNE_CHUNK = 5000
DELETE_MANY_LIMIT = 10_000
_PROPS = ["embedder", "textSha256", "dims", "vec"]


def collection_config(name: str, replication: Any = None) -> dict[str, Any]:
    """Keyword arguments of ``client.collections.create`` for the cache collection.

    On a cluster it has the data collections' replication factor: with one copy, the node
    holding it down would stall every job that embeds (a cache read that fails is bad
    weather, and the job is handed back) while the data collections still take writes.
    ``replication``: the data collections' ``replication_config`` (None: the server's default)."""
    from weaviate.classes.config import Configure, DataType, Property, Tokenization

    return {**({"replication_config": replication} if replication is not None else {}),
        "name": name,
        "description": "Embeddings computed by sqlite-to-weaviate workers, by embedder id and input hash",
        "properties": [
            Property(name="embedder", data_type=DataType.TEXT, tokenization=Tokenization.FIELD,
                     index_searchable=False, index_filterable=True, skip_vectorization=True),
            Property(name="textSha256", data_type=DataType.TEXT, tokenization=Tokenization.FIELD,
                     index_searchable=False, index_filterable=False, skip_vectorization=True),
            Property(name="dims", data_type=DataType.INT, index_filterable=False),
            Property(name="vec", data_type=DataType.BLOB),
        ],
        "inverted_index_config": Configure.inverted_index(index_timestamps=True),
    }


def ensure_cache(client: Any, name: str, replication: Any = None) -> bool:
    """Create the cache collection if it is missing; True if this call created it."""
    if client.collections.exists(name):
        return False
    try:
        client.collections.create(**collection_config(name, replication))
    except Exception as exc:  # noqa: BLE001 - another worker may have created it a moment ago
        if client.collections.exists(name):
            return False
        raise exc
    return True


@dataclass(frozen=True)
class CacheKey:
    embedder_id: str
    text_sha256: str

    @property
    def uuid(self) -> uuid_mod.UUID:
        return cache_uuid(self.embedder_id, self.text_sha256)


class EmbeddingCache:
    """Lookups and writes against the cache collection ``name`` through ``client``."""

    def __init__(self, client: Any, name: str) -> None:
        self.name = name
        self.collection = client.collections.use(name)

    def lookup(self, keys: Iterable[CacheKey]) -> dict[CacheKey, list[float]]:
        """Valid entries for ``keys`` (missing and malformed ones are left out)."""
        from weaviate.classes.query import Filter

        by_uuid = {k.uuid: k for k in keys}
        found: dict[CacheKey, list[float]] = {}
        ids = list(by_uuid)
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start:start + LOOKUP_CHUNK]
            result = self.collection.query.fetch_objects(
                filters=Filter.by_id().contains_any(chunk), limit=len(chunk), return_properties=_PROPS)
            for obj in result.objects:
                key = by_uuid.get(obj.uuid)
                vector = _entry_vector(obj.properties, key) if key is not None else None
                if vector is not None:
                    found[key] = vector
        return found

    def store(self, entries: dict[CacheKey, list[float]]) -> list[str]:
        """Upsert entries; returns the error messages of entries Weaviate refused (if any)."""
        from weaviate.classes.data import DataObject

        if not entries:
            return []
        objects = [DataObject(uuid=k.uuid, properties={
            "embedder": k.embedder_id, "textSha256": k.text_sha256, "dims": len(v),
            "vec": base64.b64encode(float32_bytes(v)).decode("ascii")}) for k, v in entries.items()]
        result = self.collection.data.insert_many(objects)
        return [e.message for e in (result.errors or {}).values()]

    def count(self) -> int:
        return int(self.collection.aggregate.over_all(total_count=True).total_count or 0)

    def count_by_embedder(self) -> dict[str, int]:
        from weaviate.classes.aggregate import GroupByAggregate

        result = self.collection.aggregate.over_all(group_by=GroupByAggregate(prop="embedder"), total_count=True)
        return {str(g.grouped_by.value): int(g.total_count or 0) for g in result.groups}


def _entry_vector(properties: dict[str, Any], key: CacheKey) -> list[float] | None:
    if properties.get("embedder") != key.embedder_id or properties.get("textSha256") != key.text_sha256:
        return None
    raw = properties.get("vec")
    dims = properties.get("dims")
    try:
        vector = from_float32_bytes(base64.b64decode(raw, validate=True)) if isinstance(raw, str) else None
    except ValueError:
        return None
    if vector is None or not isinstance(dims, (int, float)) or len(vector) != int(dims) or not valid_vector(vector):
        return None
    return vector


@dataclass
class PruneReport:
    before: int = 0
    deleted_by_age: int = 0
    deleted_by_count: int = 0
    after: int = 0
    seconds: float = 0.0


def prune(client: Any, name: str, *, max_entries: int, max_age_days: float | None = None,
          now: float | None = None) -> PruneReport:
    """Bound the cache: entries older than ``max_age_days``, then the oldest beyond ``max_entries``."""
    from weaviate.classes.query import Filter, Sort

    started = time.monotonic()
    report = PruneReport()
    if not client.collections.exists(name):
        return report
    collection = client.collections.use(name)
    cache = EmbeddingCache(client, name)
    report.before = cache.count()
    if max_age_days:
        from datetime import datetime, timezone

        cutoff = datetime.fromtimestamp((time.time() if now is None else now) - max_age_days * 86400, tz=timezone.utc)
        while True:
            result = collection.data.delete_many(where=Filter.by_update_time().less_than(cutoff))
            report.deleted_by_age += int(result.successful or 0)
            if int(result.matches or 0) < DELETE_MANY_LIMIT:
                break
    excess = cache.count() - max_entries
    while excess > 0:
        oldest = collection.query.fetch_objects(limit=min(excess, PRUNE_CHUNK), return_properties=[],
                                                sort=Sort.by_update_time(ascending=True))
        ids = [o.uuid for o in oldest.objects]
        if not ids:
            break
        result = collection.data.delete_many(where=Filter.by_id().contains_any(ids))
        deleted = int(result.successful or 0)
        report.deleted_by_count += deleted
        if deleted == 0:
            break
        excess -= deleted
    report.after = cache.count()
    report.seconds = round(time.monotonic() - started, 3)
    return report


def cache_collection_name(mapping: Any, prefix: str) -> str | None:
    """The physical name of a mapping's cache collection (None when no table uses an embedder)."""
    if not mapping.uses_embedders or mapping.embedding_cache is None:
        return None
    return prefix + mapping.embedding_cache.collection


def ensure_cache_collection(client: Any, mapping: Any, prefix: str,
                            on_create: Callable[[str], None] | None = None, replication: Any = None) -> list[str]:
    """For ``init``: create the shared cache collection (``on_create`` records it as the tool's, for
    rollback), replicated like the data collections."""
    name = cache_collection_name(mapping, prefix)
    if name is None or not ensure_cache(client, name, replication):
        return []
    if on_create is not None:
        on_create(name)
    return [f"created collection {name} (embedding cache)"]
