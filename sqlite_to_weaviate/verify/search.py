"""``verify --search``: search is validated, not assumed.

For a random sample of rows of each table:

* **keyword** — a BM25 query made of the most distinctive words of the row's longest
  searchable text must return the row's object in the top ``k``. Distinctive = rarest
  among the sampled rows of the table (an estimate of BM25's own IDF at no query cost),
  then longest; stop words left out (Weaviate drops them from BM25 too); at most 32 words
  (measured on the demo's chat data: 8 words found 82-95 % of rows, 32 words 95-100 %).
  Ties count as found: the object's own score (the same query, filtered to its id) must
  reach the score of the ``k``-th result, so "ok thanks" in fifty rows is not a failure.
  Keyword recall measures the data as well as the index: rows without any distinctive
  word (boilerplate, generated text) can be outranked by their near-duplicates, so pick
  ``--search-min-recall`` for your data; an index that lost text drops far below it.
* **vector** — for every named vector the row should have, a near-vector query with the
  row's own vector must return the object first, ties at the best distance included. The
  row's own vector is the source of truth, not the stored one: the BLOB column's vector;
  for a computed vector, the cache entry of (embedder id, SHA-256 of the row's text), else
  the embedder itself when it runs locally (model or callable), else the object's stored
  vector *only* if its fingerprint matches the row's text and the vector its recorded sum.
  So an object whose vector was replaced, or that lost its vector or its text, fails.

Recall@k is reported per collection (keyword) and per named vector; a recall below the
threshold makes ``verify`` exit 1. ``--repair`` re-sends the failing rows through the
outbox (the worker does not trust a vector that no longer matches its fingerprint) and
checks them again.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate.mapping import DataType, TableMapping

PHRASE_WORDS = 32
SCORE_EPS = 1e-4
DISTANCE_EPS = 1e-5

#: Weaviate's "en" stop-word preset (usecases/modules... stopwords/presets.go): BM25 ignores these.
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with".split())
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> set[str]:
    """The distinct words of ``text`` as Weaviate's ``word`` tokenization sees them, without stop words."""
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def phrase_words(text: str, limit: int = PHRASE_WORDS, frequency: Mapping[str, int] | None = None) -> list[str]:
    """The most distinctive words of ``text`` for a BM25 query, kept in text order.

    Rarest first by ``frequency`` (word -> rows it appears in; none given: all equal),
    then longest, then earliest.
    """
    frequency = frequency or {}
    found = []
    seen = set()
    for position, word in enumerate(_WORD.findall(text.lower())):
        if word in STOPWORDS or word in seen:
            continue
        seen.add(word)
        found.append((position, word))
    chosen = sorted(found, key=lambda pw: (frequency.get(pw[1], 0), -len(pw[1]), pw[0]))[:limit]
    return [w for _, w in sorted(chosen)]


@dataclass(frozen=True)
class SearchOptions:
    sample: int = 100
    k: int = 10
    min_recall: float = 0.9


@dataclass
class Recall:
    checked: int = 0
    found: int = 0

    @property
    def recall(self) -> float | None:
        return self.found / self.checked if self.checked else None

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "found": self.found, "recall": self.recall}


@dataclass
class SearchFailure:
    uuid: str
    key: list[Any]
    check: str          # "keyword" or "vector:<name>"
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "key": [v if not isinstance(v, bytes) else v.hex() for v in self.key],
                "check": self.check, "reason": self.reason}


@dataclass
class SearchReport:
    """One table's search check (the collection is read through its alias, as users read it)."""

    collection: str
    k: int
    min_recall: float
    sampled: int = 0
    keyword: Recall = field(default_factory=Recall)
    vectors: dict[str, Recall] = field(default_factory=dict)
    failures: list[SearchFailure] = field(default_factory=list)
    repaired: int = 0
    repair_enqueued: int = 0

    def recalls(self) -> dict[str, float]:
        out = {}
        if self.keyword.recall is not None:
            out["keyword"] = self.keyword.recall
        for name, r in self.vectors.items():
            if r.recall is not None:
                out[f"vector:{name}"] = r.recall
        return out

    @property
    def below(self) -> list[str]:
        """Checks whose recall is under the threshold (after repair, when repaired)."""
        return [name for name, value in self.recalls().items() if value < self.min_recall]

    def to_json(self) -> dict[str, Any]:
        return {"collection": self.collection, "k": self.k, "min_recall": self.min_recall, "sampled": self.sampled,
                "keyword": self.keyword.to_json(), "vectors": {n: r.to_json() for n, r in self.vectors.items()},
                "below_threshold": self.below, "failures": [f.to_json() for f in self.failures[:100]],
                "failures_total": len(self.failures), "repaired": self.repaired,
                "repair_enqueued": self.repair_enqueued}

    def line(self) -> str:
        parts = [f"keyword recall@{self.k} {_pct(self.keyword)}"]
        parts += [f"vector {name} self-hit {_pct(r)}" for name, r in self.vectors.items()]
        verdict = "BELOW THRESHOLD " + ", ".join(self.below) if self.below else "ok"
        return f"{self.collection}: {'; '.join(parts)} ({self.sampled} rows sampled; {verdict})"


def _pct(r: Recall) -> str:
    return "-" if r.recall is None else f"{r.recall:.1%} ({r.found}/{r.checked})"


@dataclass
class SearchContext:
    """What the check needs besides the table: the cache and the embedders (for reference vectors)."""

    client: Any
    cache_name: str | None = None
    embedders: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, tuple] = field(default_factory=dict)   # uuid -> primary key of the rows checked
    _built: dict[str, Any] = field(default_factory=dict)

    def failure(self, obj: Any, check: str, reason: str) -> "SearchFailure":
        return SearchFailure(str(obj.uuid), list(self.keys.get(str(obj.uuid), ())), check, reason)

    def reference_vectors(self, vector: Any, texts: list[str]) -> dict[str, list[float]]:
        """text -> the vector the embedder gives it, from the cache or a local embedder."""
        from sqlite_to_weaviate.embed.cache import CacheKey, EmbeddingCache
        from sqlite_to_weaviate.embed.text import text_sha256

        out: dict[str, list[float]] = {}
        keys = {CacheKey(vector.embedder_id, text_sha256(t)): t for t in texts}
        if self.cache_name and self.client.collections.exists(self.cache_name):
            for key, found in EmbeddingCache(self.client, self.cache_name).lookup(keys).items():
                out[keys[key]] = found
        missing = [t for t in texts if t not in out]
        spec = self.embedders.get(vector.embedder)
        if missing and spec is not None and spec.kind in ("local", "callable"):
            embedder = self._embedder(spec)
            if embedder is not None and embedder.id == vector.embedder_id:
                result = embedder.embed(missing)
                out.update({t: v for t, v in zip(missing, result.vectors) if v is not None})
        return out

    def _embedder(self, spec: Any) -> Any:
        if spec.name not in self._built:
            from sqlite_to_weaviate.embed.embedders import build_embedder
            from sqlite_to_weaviate.embed.errors import EmbedderError

            try:
                self._built[spec.name] = build_embedder(spec)
            except EmbedderError:
                self._built[spec.name] = None
        return self._built[spec.name]


def searchable_properties(table: TableMapping) -> list[str]:
    return [c.property for c in table.columns if c.data_type is DataType.TEXT and c.index_searchable]


def check_search(ctx: SearchContext, table: TableMapping, rows: Sequence[dict[str, Any]],
                 options: SearchOptions) -> SearchReport:
    """Run both checks for ``rows`` (current SQLite rows of ``table``)."""
    from sqlite_to_weaviate.mapping import ConversionError, MappingError

    report = SearchReport(table.collection, options.k, options.min_recall)
    objects = []
    for row in rows:
        try:
            obj = table.to_object(row)
        except (ConversionError, MappingError):
            continue  # a refused row: verify reports it already
        ctx.keys[str(obj.uuid)] = table.key_of(row)
        objects.append(obj)
    report.sampled = len(objects)
    text_props = searchable_properties(table)
    chosen = {str(o.uuid): _longest_text(o, text_props) for o in objects}
    frequency = Counter(w for prop in chosen.values() if prop for w in words(prop[1]))
    for obj in objects:
        if chosen[str(obj.uuid)]:
            _keyword(ctx, table, obj, chosen[str(obj.uuid)], frequency, options.k, report)
    blob_names = [name for name, _ in table.named_vectors] or (["default"] if table.vector_column else [])
    for name in blob_names:
        report.vectors[name] = Recall()
        for obj in objects:
            expected = obj.vector.get(name) if isinstance(obj.vector, dict) else obj.vector
            if expected:
                _near_vector(ctx, table, obj, name if table.named_vectors else None, expected, options.k, report,
                             report.vectors[name])
    for vector in table.embedded_vectors:
        _embedded(ctx, table, objects, vector, options.k, report)
    return report


def _handle(ctx: SearchContext, table: TableMapping, tenant: str | None) -> Any:
    collection = ctx.client.collections.use(table.collection)
    return collection.with_tenant(tenant) if tenant is not None else collection


def _longest_text(obj: Any, props: list[str]) -> tuple[str, str] | None:
    """(property, text) of the object's longest searchable text, None without one."""
    texts = [(len(obj.properties[p]), p) for p in props if isinstance(obj.properties.get(p), str) and obj.properties[p]]
    if not texts:
        return None
    _, prop = max(texts)
    return prop, obj.properties[prop]


def _keyword(ctx: SearchContext, table: TableMapping, obj: Any, chosen: tuple[str, str], frequency: Mapping[str, int],
             k: int, report: SearchReport) -> None:
    from weaviate.classes.query import Filter, MetadataQuery

    prop, text = chosen
    query_words = phrase_words(text, frequency=frequency)
    if not query_words:
        return
    query = " ".join(query_words)
    handle = _handle(ctx, table, obj.tenant)
    report.keyword.checked += 1
    top = handle.query.bm25(query=query, query_properties=[prop], limit=k,
                            return_metadata=MetadataQuery(score=True)).objects
    if any(o.uuid == obj.uuid for o in top):
        report.keyword.found += 1
        return
    own = handle.query.bm25(query=query, query_properties=[prop], limit=1, filters=Filter.by_id().equal(obj.uuid),
                            return_metadata=MetadataQuery(score=True)).objects
    if own and len(top) >= k and own[0].metadata.score is not None and top[-1].metadata.score is not None \
            and own[0].metadata.score >= top[-1].metadata.score - SCORE_EPS:
        report.keyword.found += 1  # tied with the k-th result
        return
    shown = query if len(query) <= 80 else query[:77] + "..."
    reason = (f"not in the top {k} for {shown!r} on {prop}"
              + (f" (own score {own[0].metadata.score:.3f}, k-th {top[-1].metadata.score:.3f})" if own and top else
                 " (the query does not find the object at all: its text is missing or not indexed)"))
    report.failures.append(ctx.failure(obj, "keyword", reason))


def _near_vector(ctx: SearchContext, table: TableMapping, obj: Any, target: str | None, expected: list[float], k: int,
                 report: SearchReport, recall: Recall) -> None:
    from weaviate.classes.query import Filter, MetadataQuery

    handle = _handle(ctx, table, obj.tenant)
    recall.checked += 1
    kwargs: dict[str, Any] = {"near_vector": expected, "limit": k, "return_metadata": MetadataQuery(distance=True)}
    if target is not None:
        kwargs["target_vector"] = target
    top = handle.query.near_vector(**kwargs).objects
    best = top[0].metadata.distance if top else None
    if best is not None and any(o.uuid == obj.uuid and o.metadata.distance <= best + DISTANCE_EPS for o in top):
        recall.found += 1
        return
    own = handle.query.near_vector(**kwargs | {"limit": 1, "filters": Filter.by_id().equal(obj.uuid)}).objects
    own_distance = own[0].metadata.distance if own else None
    if own_distance is not None and best is not None and own_distance <= best + DISTANCE_EPS:
        recall.found += 1  # tied at the best distance with more than k objects
        return
    check = f"vector:{target or 'default'}"
    if own_distance is None:
        reason = "the object has no such vector (or is not in the vector index)"
    else:
        reason = f"its own vector finds other objects first (own distance {own_distance:.4f}, best {best:.4f})"
    report.failures.append(ctx.failure(obj, check, reason))


def _embedded(ctx: SearchContext, table: TableMapping, objects: list[Any], vector: Any, k: int,
              report: SearchReport) -> None:
    from sqlite_to_weaviate.embed.text import embedding_input, parse_object_digest, text_sha256

    recall = report.vectors.setdefault(vector.name, Recall())
    texts = {str(o.uuid): embedding_input(o.properties, vector.sources) for o in objects}
    wanted = sorted({t for t in texts.values() if t})
    references = ctx.reference_vectors(vector, wanted) if wanted else {}
    stored = _stored(ctx, table, [o for o in objects if texts[str(o.uuid)] and texts[str(o.uuid)] not in references],
                     vector.name)
    for obj in objects:
        text = texts[str(obj.uuid)]
        if not text:
            continue
        expected = references.get(text)
        if expected is None:
            held = stored.get(str(obj.uuid))
            digest = parse_object_digest(held[0]) if held else None
            if held and digest is not None and digest.matches(vector.embedder_id, text_sha256(text), held[1]):
                expected = held[1]
        if expected is None:
            recall.checked += 1
            report.failures.append(ctx.failure(
                obj, f"vector:{vector.name}",
                "no reference vector: not in the embedding cache, and the object's vector does not match the row's "
                "text (stale or replaced)"))
            continue
        _near_vector(ctx, table, obj, vector.name, expected, k, report, recall)


def _stored(ctx: SearchContext, table: TableMapping, objects: list[Any], name: str) -> dict[str, tuple[Any, Any]]:
    """uuid -> (fingerprint, vector) as stored, for objects without a reference vector."""
    from weaviate.classes.query import Filter

    from sqlite_to_weaviate.embed.text import digest_property

    out: dict[str, tuple[Any, Any]] = {}
    by_tenant: dict[str | None, list[uuid_mod.UUID]] = {}
    for obj in objects:
        by_tenant.setdefault(obj.tenant, []).append(obj.uuid)
    for tenant, ids in by_tenant.items():
        result = _handle(ctx, table, tenant).query.fetch_objects(
            filters=Filter.by_id().contains_any(ids), limit=len(ids), include_vector=[name],
            return_properties=[digest_property(name)])
        for o in result.objects:
            vectors = o.vector if isinstance(o.vector, dict) else {}
            out[str(o.uuid)] = ((o.properties or {}).get(digest_property(name)), vectors.get(name))
    return out


def recheck_search(report: SearchReport, again: SearchReport) -> None:
    """Fold a re-check of the failing rows (after repair) into ``report``: passes now count as found."""
    before = {(f.uuid, f.check) for f in report.failures}
    still = {(f.uuid, f.check) for f in again.failures}
    fixed = before - still
    for uuid, check in fixed:
        if check == "keyword":
            report.keyword.found += 1
        else:
            report.vectors.setdefault(check.removeprefix("vector:"), Recall()).found += 1
    report.repaired += len(fixed)
    report.failures = [f for f in again.failures if (f.uuid, f.check) in before]


def search_context(client: Any, mapping: Any, collection_prefix: str) -> SearchContext:
    from sqlite_to_weaviate.embed.cache import cache_collection_name

    return SearchContext(client, cache_collection_name(mapping, collection_prefix), dict(mapping.embedders))
