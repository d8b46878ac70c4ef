"""What ``init`` (and ``migrate``, ``run``) do for embeddings, as two calls.

1. :func:`record_versions`: record collection version ``v1`` of every table whose vectors
   an embedder computes (with the embedder ids, i.e. model versions, in force now), and
   reload the mapping so the collections and aliases can be created from the record;
   warn about tables whose mapping asks for other vectors than their live version has.
2. :func:`ensure_cache_collection`: create the shared cache collection (recorded as the
   tool's, so ``rollback`` removes it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from . import versions
from .cache import ensure_cache


def record_versions(conn: sqlite3.Connection, settings: Any, mapping: Any) -> tuple[Any, list[str], list[str]]:
    """(mapping with recorded versions, actions, warnings)."""
    if not mapping.uses_embedders:
        return mapping, [], []
    actions = versions.record_initial(conn, list(mapping.tables.values()), mapping.embedders)
    if actions:
        mapping = settings.load_mapping(conn)
    warnings = [message for t in mapping.tables.values() if (message := versions.drift(t))]
    return mapping, actions, warnings


def cache_collection_name(mapping: Any, prefix: str) -> str | None:
    """The physical name of the cache collection (None when no table uses an embedder)."""
    if not mapping.uses_embedders or mapping.embedding_cache is None:
        return None
    return prefix + mapping.embedding_cache.collection


def ensure_cache_collection(client: Any, mapping: Any, prefix: str,
                            on_create: Callable[[str], None] | None = None) -> list[str]:
    name = cache_collection_name(mapping, prefix)
    if name is None or not ensure_cache(client, name):
        return []
    if on_create is not None:
        on_create(name)
    return [f"created collection {name} (embedding cache)"]
