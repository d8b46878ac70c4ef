"""``embeddings status`` and ``embeddings prune``: what the versions, the cache and the models cost.

Read-only except the prune, which bounds the cache collection to the mapping's
``[embedding_cache]`` limits (also run by the sidecar's periodic check).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlite_to_weaviate.embed.cache import EmbeddingCache, PruneReport, cache_collection_name, prune
from sqlite_to_weaviate.embed.counters import read_counters
from sqlite_to_weaviate.mapping.versions import drift


@dataclass
class TableVersions:
    table: str
    alias: str
    alias_target: str | None
    versions: list[dict[str, Any]]
    drift: str | None


def status(settings: Any) -> dict[str, Any]:
    """Versions per table (with object counts), the cache, and the embedding counters."""
    conn = settings.open_db(readonly=True)
    try:
        mapping = settings.load_mapping(conn)
    finally:
        conn.close()
    client = settings.connect_weaviate()
    out: dict[str, Any] = {"tables": [], "cache": None, "counters": {}}
    try:
        for t in mapping.tables.values():
            if not t.versioned:
                continue
            alias = client.alias.get(alias_name=t.collection)
            rows = []
            for v in t.versions:
                physical = t.version_collection(v.name)
                objects = None
                if client.collections.exists(physical):
                    objects = _count(client, physical, bool(t.tenant_column))
                rows.append({"version": v.name, "state": v.state, "collection": physical, "objects": objects,
                             "vectors": {x.name: x.embedder_id for x in v.vectors}})
            out["tables"].append(dataclasses.asdict(TableVersions(t.table, t.collection,
                                                                  alias.collection if alias else None, rows,
                                                                  drift(t))))
        name = cache_collection_name(mapping, settings.collection_prefix)
        if name and client.collections.exists(name):
            cache = EmbeddingCache(client, name)
            out["cache"] = {"collection": name, "entries": cache.count(), "by_embedder": cache.count_by_embedder(),
                            "max_entries": mapping.embedding_cache.max_entries,
                            "max_age_days": mapping.embedding_cache.max_age_days}
    finally:
        client.close()
    try:
        redis_conn = settings.connect_redis()
        try:
            out["counters"] = read_counters(redis_conn, settings.namespace)
        finally:
            redis_conn.close()
    except Exception as exc:  # noqa: BLE001 - Redis down: counters unknown, the rest still useful
        out["counters_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _count(client: Any, name: str, multi_tenant: bool) -> int:
    collection = client.collections.use(name)
    if not multi_tenant:
        return int(collection.aggregate.over_all(total_count=True).total_count or 0)
    return sum(int(collection.with_tenant(t).aggregate.over_all(total_count=True).total_count or 0)
               for t in collection.tenants.get())


def prune_cache(settings: Any) -> Any:
    """Bound the cache collection to the mapping's ``[embedding_cache]`` limits."""
    conn = settings.open_db(readonly=True)
    try:
        mapping = settings.load_mapping(conn)
    finally:
        conn.close()
    name = cache_collection_name(mapping, settings.collection_prefix)
    if name is None:
        return PruneReport()
    client = settings.connect_weaviate()
    try:
        return prune(client, name, max_entries=mapping.embedding_cache.max_entries,
                     max_age_days=mapping.embedding_cache.max_age_days)
    finally:
        client.close()
