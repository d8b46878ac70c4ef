"""The worker's one call: give every upsert the vectors its payload asks for, computing each once.

The relay sends each object with an ``embed`` spec per named vector (embedder name, the
embedder id it expects, and the source properties). Before the objects are written, for
every (object, vector) whose input text is not empty:

0. **The object itself.** The target object is fetched (one query per collection and
   job). If its fingerprint ``s2wVec_<name>`` says it holds the vector of this exact
   input by this exact embedder, and its vector still matches the recorded sum, that
   vector is reused: retries, re-sends, repairs, backfill re-runs and changes of columns
   that are not embedded cost no lookup and no model call.
1. **The cache collection** (:mod:`.cache`), by (embedder id, SHA-256 of the text): the
   same text in another row, a deleted and recreated row, a job that was fenced after
   embedding.
2. **The model**, once per distinct text, in slices short enough to renew the job's lease
   between them; new vectors go to the cache at once (before the objects are written),
   so no computed vector is lost to a fence or a crash.

An input the model refuses for good makes its row a dead letter (reason included); the
rest of the job is written. Everything else that goes wrong (model unreachable, rate
limited, misconfigured, this worker's mapping file not defining the embedder the relay
named, or defining a different model under that name) hands the job back as transient:
no row is ever written with a vector from the wrong model, and none is dead-lettered for
a fault that is not its own.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.embed.cache import CacheKey, EmbeddingCache, ensure_cache
from sqlite_to_weaviate.embed.counters import Tally
from sqlite_to_weaviate.embed.embedders import Embedder, build_embedder
from sqlite_to_weaviate.embed.errors import EmbedderConfigError, EmbedderError
from sqlite_to_weaviate.embed.rate_limit import RedisRateLimiter
from sqlite_to_weaviate.embed.text import (
    digest_property, embedding_input, object_digest, parse_object_digest, text_sha256,
)
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.mapping.collections import replication_config
from sqlite_to_weaviate.writer.embedding_claims import CLAIM_WAIT_S, Claims
from sqlite_to_weaviate.writer.weaviate_apply import TransientError

Guard = Callable[[], None]
MAX_LOCAL_SLICE = 256


class EmbedHandBack(Exception):
    """The job must be handed back (transient); the message says why."""


@dataclass
class _Item:
    index: int          # position of the object in the upserts
    vector: str         # named vector
    embedder: str       # embedder name (the worker's mapping file defines it)
    embedder_id: str    # what the relay expects that name to be
    text: str
    key: CacheKey
    result: list[float] | None = None


@dataclass
class WorkerEmbedders:
    """This process's view of the mapping file's ``[embedders]``: reloaded when the file changes.

    Models are loaded on first use and kept (a local model costs ~0.3 s and ~130 MB once).
    """

    mapping_file: str | None
    collection_prefix: str = ""
    replication_factor: int = 1  # of a cache collection this worker has to create
    _stamp: tuple[float, int] | None = None
    _config: Any = None
    _built: dict[str, tuple[Any, Embedder]] = field(default_factory=dict)
    _ids: dict[str, tuple[Any, str]] = field(default_factory=dict)
    known_caches: set[str] = field(default_factory=set)

    def config(self) -> Any:
        from sqlite_to_weaviate.mapping import MappingError, load_mapping_config

        if not self.mapping_file:
            raise EmbedderConfigError("the relay asked for embeddings but this worker has no mapping file: set "
                                      "S2W_MAPPING_FILE (or --mapping) to the same file the relay uses")
        try:
            stat = Path(self.mapping_file).stat()
            stamp = (stat.st_mtime, stat.st_size)
            if stamp != self._stamp:
                self._config = load_mapping_config(self.mapping_file)
                self._stamp = stamp
        except (OSError, MappingError) as exc:
            raise EmbedderConfigError(f"cannot read the worker's mapping file: {exc}") from None
        return self._config

    def spec(self, name: str) -> Any:
        spec = self.config().embedders.get(name)
        if spec is None:
            raise EmbedderConfigError(f"embedder {name!r} is not defined in this worker's mapping file "
                                      f"{self.mapping_file} (the relay's mapping defines it): update the file")
        return spec

    def embedder_id(self, name: str) -> str:
        spec = self.spec(name)
        known = self._ids.get(name)
        if known is None or known[0] != spec:
            known = (spec, spec.embedder_id())
            self._ids[name] = known
        return known[1]

    def embedder(self, name: str, redis_conn: Any, namespace: str) -> Embedder:
        spec = self.spec(name)
        built = self._built.get(name)
        if built is None or built[0] != spec:
            def limiter(unit: str, per_minute: float) -> RedisRateLimiter:
                return RedisRateLimiter(redis_conn, f"{namespace}:ratelimit:{name}:{unit}", per_minute)

            built = (spec, build_embedder(spec, limiter_factory=limiter))
            self._built[name] = built
        return built[1]

    def cache_name(self) -> str:
        return self.collection_prefix + self.config().embedding_cache.collection


@dataclass
class EmbedResult:
    upserts: list[dict[str, Any]]          # the objects to write, vectors attached
    refused: dict[str, str]                # uuid -> reason: rows whose input the model refused
    counts: dict[str, int] = field(default_factory=dict)  # totals of this job (also published to Redis)


def embed_upserts(client: Any, redis_conn: Any, namespace: str, upserts: list[dict[str, Any]], *,
                  embedders: WorkerEmbedders, guard: Guard, run: Callable[[Callable[[], Any]], Any],
                  slice_seconds: float = 5.0) -> EmbedResult:
    """Attach the requested vectors to ``upserts`` (see the module docstring).

    ``run(call)`` runs a Weaviate call with the job's retry policy; ``guard()`` checks the
    fence and renews the lease. Raises :class:`EmbedHandBack` when the job must be retried later.
    """
    tally = Tally()
    refused: dict[CacheKey, str] = {}
    try:
        items = _items(upserts, embedders)
        if items:
            _from_objects(client, upserts, items, run, tally)
        waiting = [i for i in items if i.result is None]
        if waiting:
            cache = _cache(client, embedders, run)
            found = run(lambda: cache.lookup({i.key for i in waiting}))
            for item in waiting:
                if item.key in found:
                    item.result = found[item.key]
                    tally.add(item.embedder_id, "reused_cache")
            missing = [i for i in waiting if i.result is None]
            if missing:
                refused = _from_model(missing, embedders, cache, redis_conn, namespace, guard, run, tally,
                                      slice_seconds)
    except EmbedderError as exc:
        raise EmbedHandBack(f"embedding: {exc}") from None
    finally:
        counts = {c: tally.total(c) for c in ("embedded", "requests", "reused_object", "reused_cache", "refused")}
        try:
            tally.flush(redis_conn, namespace)
        except Exception:  # noqa: BLE001 - counters are informational; never fail a job for them
            pass
    result = _attach(upserts, items, refused)
    result.counts = counts
    return result


def _cache(client: Any, embedders: WorkerEmbedders, run: Callable[[Callable[[], Any]], Any]) -> EmbeddingCache:
    """The cache collection (created if someone deleted it: init normally creates and records it)."""
    name = embedders.cache_name()
    if name not in embedders.known_caches:
        replication = replication_config(embedders.replication_factor)
        if not run(lambda: client.collections.exists(name)) and ensure_cache(client, name, replication):
            get_logger("s2w.embed").warning("created the embedding cache collection (run `init` to record it "
                                            "for rollback)", name=name)
        embedders.known_caches.add(name)
    return EmbeddingCache(client, name)


def _items(upserts: list[dict[str, Any]], embedders: WorkerEmbedders) -> list[_Item]:
    items = []
    for index, obj in enumerate(upserts):
        spec = obj.get("embed")
        if not spec:
            continue
        if not isinstance(spec, dict):
            raise EmbedHandBack("payload object has a malformed embed spec")
        properties = obj.get("properties") or {}
        for vector, wanted in spec.items():
            if not isinstance(wanted, dict) or not isinstance(wanted.get("from"), list):
                raise EmbedHandBack(f"payload object has a malformed embed spec for vector {vector!r}")
            text = embedding_input(properties, wanted["from"])
            if not text:
                continue
            name, expected = str(wanted.get("embedder")), str(wanted.get("id"))
            actual = embedders.embedder_id(name)
            if actual != expected:
                raise EmbedderConfigError(
                    f"embedder {name!r} is {actual} in this worker's mapping file but the relay expects {expected} "
                    "(a collection version is built with one model: define the new model under a new embedder "
                    "name and run `sqlite-to-weaviate embeddings rebuild`)")
            digest = text_sha256(text)
            items.append(_Item(index, vector, name, expected, text, CacheKey(expected, digest)))
    return items


def _from_objects(client: Any, upserts: list[dict[str, Any]], items: list[_Item],
                  run: Callable[[Callable[[], Any]], Any], tally: Tally) -> None:
    """Tier 0: reuse the vector the target object already holds for this exact input."""
    from weaviate.classes.query import Filter

    groups: dict[tuple[str, str | None], list[_Item]] = defaultdict(list)
    for item in items:
        obj = upserts[item.index]
        groups[(obj["collection"], obj.get("tenant"))].append(item)
    for (collection_name, tenant), group in groups.items():
        ids = sorted({str(upserts[i.index]["uuid"]) for i in group})
        vectors = sorted({i.vector for i in group})
        collection = client.collections.use(collection_name)
        if tenant is not None:
            collection = collection.with_tenant(tenant)

        def fetch() -> Any:
            return collection.query.fetch_objects(filters=Filter.by_id().contains_any(ids), limit=len(ids),
                                                  include_vector=vectors,
                                                  return_properties=[digest_property(v) for v in vectors])
        try:
            result = run(fetch)
        except Exception as exc:  # noqa: BLE001 - e.g. a tenant not created yet: nothing to reuse
            if isinstance(exc, TransientError):
                raise
            continue
        stored = {str(o.uuid): o for o in result.objects}
        for item in group:
            obj = stored.get(str(upserts[item.index]["uuid"]))
            if obj is None:
                continue
            digest = parse_object_digest((obj.properties or {}).get(digest_property(item.vector)))
            vector = (obj.vector or {}).get(item.vector) if isinstance(obj.vector, dict) else None
            if digest is not None and digest.matches(item.embedder_id, item.key.text_sha256, vector):
                item.result = list(vector)
                tally.add(item.embedder_id, "reused_object")


def _from_model(missing: list[_Item], embedders: WorkerEmbedders, cache: EmbeddingCache, redis_conn: Any,
                namespace: str, guard: Guard, run: Callable[[Callable[[], Any]], Any], tally: Tally,
                slice_seconds: float) -> dict[CacheKey, str]:
    """Tier 2: each distinct text once, even across workers embedding at the same moment.

    Before calling the model a worker claims its texts in Redis (``SET NX`` with a TTL);
    a text another worker claimed is awaited in the cache instead (the claimer stores it
    as soon as its slice is done, or marks it refused). A claim that is released without
    a result, or outlives the wait, is computed here after all: Redis is untrusted, so a
    claim can delay a vector, never lose it.
    """
    refused: dict[CacheKey, str] = {}
    by_embedder: dict[str, dict[CacheKey, str]] = defaultdict(dict)
    for item in missing:
        by_embedder[item.embedder][item.key] = item.text
    computed: dict[CacheKey, list[float]] = {}
    claims = Claims(redis_conn, namespace)

    def wait(seconds: float) -> None:  # rate limits and Retry-After: sleep, but keep the lease
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            guard()
            time.sleep(min(left, 0.5))

    for name, texts in by_embedder.items():
        embedder = embedders.embedder(name, redis_conn, namespace)
        mine, theirs = claims.take(list(texts))
        try:
            _compute(embedder, {k: texts[k] for k in mine}, cache, guard, wait, run, tally, slice_seconds,
                     computed, refused)
        finally:
            claims.release(mine, refused)
        if theirs:
            found, also_refused, left = claims.await_others(theirs, cache, guard, run,
                                                            timeout=max(CLAIM_WAIT_S, 4 * slice_seconds))
            for key in found:
                tally.add(key.embedder_id, "reused_cache")
            computed.update(found)
            refused.update(also_refused)
            _compute(embedder, {k: texts[k] for k in left}, cache, guard, wait, run, tally, slice_seconds,
                     computed, refused)
    for item in missing:
        if item.key in computed:
            item.result = computed[item.key]
    return refused


def _compute(embedder: Embedder, texts: dict[CacheKey, str], cache: EmbeddingCache, guard: Guard,
             wait: Callable[[float], None], run: Callable[[Callable[[], Any]], Any], tally: Tally,
             slice_seconds: float, computed: dict[CacheKey, list[float]], refused: dict[CacheKey, str]) -> None:
    """Embed ``texts`` in slices that leave time to renew the lease; cache each slice at once."""
    keys = list(texts)
    limit = embedder.spec.batch_size if embedder.spec.kind != "local" else MAX_LOCAL_SLICE
    size = min(limit, 8 if embedder.spec.kind == "local" else limit)
    position = 0
    while position < len(keys):
        guard()
        chunk = keys[position:position + size]
        started = time.monotonic()
        out = embedder.embed([texts[k] for k in chunk], wait=wait)
        spent = time.monotonic() - started
        fresh = {k: v for k, v in zip(chunk, out.vectors) if v is not None}
        for offset, reason in out.refused.items():
            refused[chunk[offset]] = reason
        tally.add(embedder.id, "requests", out.requests)
        tally.add(embedder.id, "embedded", len(fresh))
        tally.add(embedder.id, "chars", sum(len(texts[k]) for k in fresh))
        tally.add(embedder.id, "tokens", out.tokens or 0)
        tally.add(embedder.id, "truncated", out.truncated)
        tally.add(embedder.id, "refused", len(out.refused))
        if fresh:
            errors = run(lambda: cache.store(fresh))
            if errors:
                get_logger("s2w.embed").warning("cache entries refused", count=len(errors), example=errors[0][:200])
            computed.update(fresh)
        position += len(chunk)
        if embedder.spec.kind == "local" and spent > 0:  # aim each slice at ~slice_seconds
            per_text = spent / len(chunk)
            size = max(1, min(limit, int(slice_seconds / per_text)))


def _attach(upserts: list[dict[str, Any]], items: list[_Item], refused: dict[CacheKey, str]) -> EmbedResult:
    refused_rows: dict[str, str] = {}
    for item in items:
        if item.key in refused:
            uuid = str(upserts[item.index]["uuid"])
            refused_rows.setdefault(uuid, f"embedder {item.embedder} ({item.embedder_id}) refused the input of "
                                          f"vector {item.vector!r}: {refused[item.key]}")
    for item in items:
        if item.result is None:
            continue
        obj = upserts[item.index]
        vectors = obj.get("vector")
        if not isinstance(vectors, dict):
            vectors = {}
        vectors[item.vector] = item.result
        obj["vector"] = vectors
        obj["properties"][digest_property(item.vector)] = object_digest(item.embedder_id, item.key.text_sha256,
                                                                        item.result)
    out = []
    for obj in upserts:
        obj.pop("embed", None)
        if str(obj["uuid"]) not in refused_rows:
            out.append(obj)
    return EmbedResult(out, refused_rows)
