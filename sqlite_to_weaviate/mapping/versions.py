"""Collection versions as the mapping sees them: read from the record, applied to tables.

A table whose vectors an embedder computes is stored in versioned collections
``<Collection>_v1``, ``<Collection>_v2``, ... and ``<Collection>`` itself is a Weaviate
alias pointing at the *live* one: users and ``verify`` read through the alias, workers
write to the physical collections, so moving the alias never redirects half a batch.
A version's vectors (names, embedders with their ids, source properties) are fixed when
it is created; a different model means a new version (docs/embeddings.md).

The record lives in the app's SQLite file (``_s2w_state`` key ``embeddings.versions``),
written by :mod:`sqlite_to_weaviate.collection_versions`; this module only reads it, so
every reflected mapping carries the versions a relay must write.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import sqlite3
from typing import Any

from sqlite_to_weaviate.store import registry
from sqlite_to_weaviate.store.state import STATE_TABLE, StateKey

from .errors import MappingError
from .model import TableMapping
from .types import DataType
from .vectors import CollectionVersion, EmbeddedVector


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


STATE_KEY = StateKey.EMBEDDING_VERSIONS.value
GENERATION_KEY = StateKey.EMBEDDING_GENERATION.value
RELAY_GENERATION_KEY = StateKey.EMBEDDING_RELAY_GENERATION.value
STATES = ("live", "building", "standby")


def _state_value(conn: sqlite3.Connection, key: str) -> str | None:
    """A value of the tool's ``_s2w_state`` (None before ``init`` created it)."""
    if not registry.has_table(conn, STATE_TABLE):
        return None
    cursor = conn.cursor()
    cursor.row_factory = None
    row = cursor.execute("SELECT value FROM _s2w_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def read_records(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """table -> recorded versions (as stored). Unreadable JSON is a MappingError, never ignored."""
    raw = _state_value(conn, STATE_KEY)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {str(t): list(v) for t, v in data["tables"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MappingError(f"the collection-version record in _s2w_state ({STATE_KEY}) is unreadable: {exc}") from None


def generation(conn: sqlite3.Connection, key: str = GENERATION_KEY) -> int:
    try:
        return int(_state_value(conn, key) or 0)
    except ValueError:
        return 0


def vector_from_record(data: dict[str, Any]) -> EmbeddedVector:
    return EmbeddedVector(name=str(data["name"]), embedder=str(data["embedder"]), sources=tuple(data["from"]),
                          source_columns=tuple(data.get("columns") or ()), embedder_id=str(data["id"]))


def vector_to_record(vector: EmbeddedVector) -> dict[str, Any]:
    return {"name": vector.name, "embedder": vector.embedder, "id": vector.embedder_id, "from": list(vector.sources),
            "columns": list(vector.source_columns)}


def parse_versions(table: str, records: list[dict[str, Any]]) -> tuple[CollectionVersion, ...]:
    try:
        versions = tuple(CollectionVersion(name=str(r["name"]), state=str(r["state"]),
                                           vectors=tuple(vector_from_record(v) for v in r["vectors"]))
                         for r in records)
    except (KeyError, TypeError) as exc:
        raise MappingError(f"the collection-version record of table {table!r} is unreadable: {exc}") from None
    if sum(1 for v in versions if v.state == "live") != 1 or any(v.state not in STATES for v in versions):
        raise MappingError(f"the collection-version record of table {table!r} must have exactly one live version: "
                           f"{[(v.name, v.state) for v in versions]}")
    return versions


def apply_recorded_versions(conn: sqlite3.Connection, tables: dict[str, TableMapping]) -> dict[str, TableMapping]:
    """Give tables with embedder vectors their versions: recorded ones, or an unrecorded ``v1``.

    The live version's vectors become ``embedded_vectors`` (what readers and ``to_object``
    use); ``desired_vectors`` keeps what the mapping file asks for, so a difference can be
    reported (:func:`drift`) instead of silently mixing two models in one collection.
    """
    records = read_records(conn)
    out = {}
    for name, table in tables.items():
        recorded = records.get(name)
        if recorded:
            versions = parse_versions(name, recorded)
            live = next(v for v in versions if v.state == "live")
            out[name] = dataclasses.replace(table, versions=versions, embedded_vectors=live.vectors)
        elif table.desired_vectors:
            out[name] = dataclasses.replace(table, versions=(CollectionVersion("v1", "live", table.desired_vectors),))
        else:
            out[name] = table
    return out


def drift(table: TableMapping) -> str | None:
    """Why the live version's vectors differ from what the mapping asks for (None if they do not)."""
    live = table.live_version
    if live is None:
        return None
    want = {v.name: v for v in table.desired_vectors}
    have = {v.name: v for v in live.vectors}
    problems = []
    for name in sorted(set(want) | set(have)):
        w, h = want.get(name), have.get(name)
        if w is None:
            problems.append(f"vector {name!r} is no longer in the mapping")
        elif h is None:
            problems.append(f"vector {name!r} is new in the mapping")
        elif w.embedder != h.embedder:
            problems.append(f"vector {name!r}: the mapping says embedder {w.embedder!r}, {live.name} uses "
                            f"{h.embedder!r} ({h.embedder_id})")
        elif w.sources != h.sources:
            problems.append(f"vector {name!r}: the mapping embeds {list(w.sources)}, {live.name} embeds "
                            f"{list(h.sources)}")
    if not problems:
        return None
    return (f"table {table.table!r} (alias {table.collection} -> {table.version_collection(live.name)}): "
            + "; ".join(problems) + ". The live version keeps its vectors; build a new version with "
            "`sqlite-to-weaviate embeddings rebuild`")


def resolve_ids(vectors: tuple[EmbeddedVector, ...], embedders: dict[str, Any]) -> tuple[EmbeddedVector, ...]:
    """The vectors with the ids of their embedders (model + version), from the mapping's embedders."""
    out = []
    for vector in vectors:
        spec = embedders.get(vector.embedder)
        if spec is None:
            raise MappingError(f"vector {vector.name!r} uses embedder {vector.embedder!r}, which the mapping does "
                               "not define")
        out.append(dataclasses.replace(vector, embedder_id=spec.embedder_id()))
    return tuple(out)


def embedded_vectors(table: str, table_config: Any, mapped: list[Any], path: str) -> tuple[EmbeddedVector, ...]:
    """Named vectors computed by an embedder, each from its text columns (vectorize = true by default)."""
    by_column = {c.column: c for c in mapped}
    result = []
    for vector in table_config.embedded_vectors:
        where = f"{path}.vectors.{vector.name}"
        if vector.source_columns is not None:
            columns = []
            for name in vector.source_columns:
                column = by_column.get(name)
                if column is None:
                    raise MappingError(f"{where}.source_columns: column {name!r} is not a mapped column of table "
                                       f"{table!r} — {_suggest(name, list(by_column))}mapped: {', '.join(by_column)}")
                columns.append(column)
        else:
            columns = [c for c in mapped if c.vectorize]
            if not columns:
                raise MappingError(f"{where}: embedder {vector.embedder!r} has no text to embed: set vectorize = true "
                                   "on the text columns it should read, or list them in source_columns")
        not_text = [c.column for c in columns if c.data_type is not DataType.TEXT]
        if not_text:
            raise MappingError(f"{where}: only text columns can be embedded; {not_text} map to other types "
                               "(set type = \"text\" or leave them out)")
        result.append(EmbeddedVector(name=vector.name, embedder=vector.embedder,
                                     sources=tuple(c.property for c in columns),
                                     source_columns=tuple(c.column for c in columns)))
    names = [v.name for v in result] + [n for n, _ in table_config.vectors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MappingError(f"{path}: vector name(s) {duplicates} used twice")
    return tuple(result)


def check_reference_targets(source: str, tables: dict[str, TableMapping]) -> None:
    """Weaviate refuses a reference to an alias, and a table with embedder vectors is an alias."""
    for table in tables.values():
        for reference in table.references:
            target = tables.get(reference.target_table)
            if target is not None and target.desired_vectors:
                raise MappingError(
                    f"{source}: tables.{table.table}.references: {reference.column!r} points at table "
                    f"{target.table!r}, whose vectors are computed by an embedder; its collection is then an alias "
                    "over versioned collections, and Weaviate cannot store a reference to an alias. Remove the "
                    f"reference (keep {reference.column!r} as a plain property) or compute the vectors of another table"
                )
