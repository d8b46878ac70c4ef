"""Recording collection versions: ``init`` records ``v1``, ``embeddings rebuild | switch | drop`` the rest.

Every change is one SQLite transaction on ``_s2w_state`` that also bumps
``embeddings.generation``, so a running relay notices it on its next pass, reloads its
mapping and records the generation it now dispatches with (``embeddings.relay_generation``),
which ``rebuild`` waits for before it starts the backfill of a new version. Reading the
record is :mod:`sqlite_to_weaviate.mapping.versions`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from sqlite_to_weaviate.store.state import ensure_state_table, set_state
from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.mapping.errors import MappingError
from sqlite_to_weaviate.mapping.naming import validate_collection_name
from sqlite_to_weaviate.mapping.model import TableMapping
from sqlite_to_weaviate.mapping.vectors import CollectionVersion
from sqlite_to_weaviate.mapping.versions import (
    GENERATION_KEY, RELAY_GENERATION_KEY, STATE_KEY, drift, generation, parse_versions, read_records, resolve_ids,
    vector_to_record,
)

__all__ = ["RELAY_GENERATION_KEY", "add_version", "generation", "note_relay_generation", "record_initial",
           "record_versions", "set_states"]


def _write(conn: sqlite3.Connection, records: dict[str, list[dict[str, Any]]]) -> int:
    """Store the records and bump the generation, in the caller's transaction; returns the new generation."""
    new = generation(conn) + 1
    set_state(conn, STATE_KEY, json.dumps({"tables": records}, sort_keys=True))
    set_state(conn, GENERATION_KEY, str(new))
    return new


def _record(version: CollectionVersion, created_at: float | None = None) -> dict[str, Any]:
    return {"name": version.name, "state": version.state, "vectors": [vector_to_record(v) for v in version.vectors],
            "created_at": created_at if created_at is not None else time.time()}


def record_initial(conn: sqlite3.Connection, tables: list[TableMapping], embedders: dict[str, Any]) -> list[str]:
    """Record ``v1`` (with embedder ids) for every table with embedder vectors and no record yet."""
    todo = [t for t in tables if t.desired_vectors]
    if not todo:
        return []
    for table in todo:
        validate_collection_name(table.version_collection("v1"), f"the first version of table {table.table!r}")
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
    with immediate(conn):
        set_state(conn, RELAY_GENERATION_KEY, str(value))


def record_versions(conn: sqlite3.Connection, settings: Any, mapping: Any) -> tuple[Any, list[str], list[str]]:
    """For ``init``: record ``v1`` of new embedder tables and reload the mapping.

    Returns (mapping with recorded versions, actions, warnings about tables whose mapping
    asks for other vectors than their live version has).
    """
    if not mapping.uses_embedders:
        return mapping, [], []
    actions = record_initial(conn, list(mapping.tables.values()), mapping.embedders)
    if actions:
        mapping = settings.load_mapping(conn)
    warnings = [message for t in mapping.tables.values() if (message := drift(t))]
    return mapping, actions, warnings
