"""Collection versions: how a table's vectors change model without downtime.

A table whose vectors are computed by an embedder is stored in versioned collections
``<Collection>_v1``, ``<Collection>_v2``, ... and ``<Collection>`` itself is a Weaviate
alias pointing at the *live* one: users and ``verify`` read through the alias, workers
write to the physical collections, so moving the alias never redirects half a batch.
A version's vectors (names, embedders with their ids, source properties) are fixed when
it is created; a different model means a new version, filled beside the live one
(history by the backfill, live changes written to both), verified, then switched to
(``sqlite-to-weaviate embeddings rebuild | switch | rollback | drop``, docs/embeddings.md).

The record is durable and lives in the app's SQLite file (``_s2w_state`` key
``embeddings.versions``), like every other decision the pipeline must survive a crash
with; ``embeddings.generation`` counts changes so a running relay reloads its mapping
(and records the generation it runs with in ``embeddings.relay_generation``). Every
recorded version is written; a version the relay has not heard of yet receives its
history from the backfill that ``rebuild`` starts *after* the relay confirmed it.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from typing import Any

from sqlite_to_weaviate.mapping.errors import MappingError
from sqlite_to_weaviate.mapping.model import CollectionVersion, EmbeddedVector, TableMapping

STATE_KEY = "embeddings.versions"
GENERATION_KEY = "embeddings.generation"
RELAY_GENERATION_KEY = "embeddings.relay_generation"
STATES = ("live", "building", "standby")


def _state_value(conn: sqlite3.Connection, key: str) -> str | None:
    from sqlite_to_weaviate.capture.state import get_state, has_state_table

    if not has_state_table(conn):
        return None
    return get_state(conn, key)


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


def _vector_from_record(data: dict[str, Any]) -> EmbeddedVector:
    return EmbeddedVector(name=str(data["name"]), embedder=str(data["embedder"]), sources=tuple(data["from"]),
                          source_columns=tuple(data.get("columns") or ()), embedder_id=str(data["id"]))


def _vector_to_record(vector: EmbeddedVector) -> dict[str, Any]:
    return {"name": vector.name, "embedder": vector.embedder, "id": vector.embedder_id, "from": list(vector.sources),
            "columns": list(vector.source_columns)}


def parse_versions(table: str, records: list[dict[str, Any]]) -> tuple[CollectionVersion, ...]:
    try:
        versions = tuple(CollectionVersion(name=str(r["name"]), state=str(r["state"]),
                                           vectors=tuple(_vector_from_record(v) for v in r["vectors"]))
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


def _write(conn: sqlite3.Connection, records: dict[str, list[dict[str, Any]]]) -> int:
    """Store the records and bump the generation, in the caller's transaction; returns the new generation."""
    from sqlite_to_weaviate.capture.state import set_state

    new = generation(conn) + 1
    set_state(conn, STATE_KEY, json.dumps({"tables": records}, sort_keys=True))
    set_state(conn, GENERATION_KEY, str(new))
    return new


def _record(version: CollectionVersion, created_at: float | None = None) -> dict[str, Any]:
    return {"name": version.name, "state": version.state, "vectors": [_vector_to_record(v) for v in version.vectors],
            "created_at": created_at if created_at is not None else time.time()}


def record_initial(conn: sqlite3.Connection, tables: list[TableMapping], embedders: dict[str, Any]) -> list[str]:
    """Record ``v1`` (with embedder ids) for every table with embedder vectors and no record yet."""
    from sqlite_to_weaviate.capture.state import ensure_state_table
    from sqlite_to_weaviate.capture.txn import immediate

    todo = [t for t in tables if t.desired_vectors]
    if not todo:
        return []
    resolved = {t.table: resolve_ids(t.desired_vectors, embedders) for t in todo}  # may hash weights: outside the txn
    actions = []
    with immediate(conn):
        ensure_state_table(conn)
        records = read_records(conn)
        for table in todo:
            if table.table in records:
                continue
            records[table.table] = [_record(CollectionVersion("v1", "live", resolved[table.table]))]
            actions.append(f"recorded collection version v1 of table {table.table} "
                           f"({', '.join(f'{v.name}: {v.embedder_id}' for v in resolved[table.table])})")
        if actions:
            _write(conn, records)
    return actions


def add_version(conn: sqlite3.Connection, table: TableMapping, embedders: dict[str, Any],
                name: str | None = None) -> CollectionVersion:
    """Record a new ``building`` version with the vectors the mapping asks for now."""
    from sqlite_to_weaviate.capture.txn import immediate
    from sqlite_to_weaviate.mapping.naming import validate_collection_name

    vectors = resolve_ids(table.desired_vectors, embedders)
    with immediate(conn):
        records = read_records(conn)
        current = records.get(table.table)
        if not current:
            raise MappingError(f"table {table.table!r} has no recorded collection version; run "
                               "`sqlite-to-weaviate init` first")
        taken = {str(r["name"]) for r in current}
        if name is None:
            number = max((int(n[1:]) for n in taken if n[1:].isdigit()), default=0) + 1
            name = f"v{number}"
        if name in taken:
            raise MappingError(f"table {table.table!r} already has a collection version {name!r}")
        if not name or not name.replace("_", "").isalnum():
            raise MappingError(f"version name {name!r}: use letters, digits and _")
        validate_collection_name(table.version_collection(name), f"version {name} of table {table.table!r}")
        version = CollectionVersion(name, "building", vectors)
        current.append(_record(version))
        records[table.table] = current
        _write(conn, records)
    return version


def set_states(conn: sqlite3.Connection, table: str, changes: dict[str, str | None]) -> int:
    """Change version states (``None`` forgets a version); returns the new generation."""
    from sqlite_to_weaviate.capture.txn import immediate

    with immediate(conn):
        records = read_records(conn)
        current = records.get(table) or []
        names = {str(r["name"]) for r in current}
        unknown = set(changes) - names
        if unknown:
            raise MappingError(f"table {table!r} has no collection version(s) {sorted(unknown)}; versions: "
                               f"{sorted(names)}")
        kept = []
        for record in current:
            new_state = changes.get(str(record["name"]), record["state"])
            if new_state is not None:
                kept.append(dict(record, state=new_state))
        parse_versions(table, kept)  # exactly one live, known states
        records[table] = kept
        return _write(conn, records)


def note_relay_generation(conn: sqlite3.Connection, value: int) -> None:
    """The relay runs with the versions of generation ``value`` (``rebuild`` waits for this)."""
    from sqlite_to_weaviate.capture.state import set_state
    from sqlite_to_weaviate.capture.txn import immediate

    with immediate(conn):
        set_state(conn, RELAY_GENERATION_KEY, str(value))
