"""Field-level comparison of a random sample of rows (``--sample N``).

The content hash proves the object was written from the current row; it cannot see an
object altered behind the pipeline's back (a property edited in Weaviate, a replaced
vector) because the stored hash still matches. The sample catches those: each sampled row
is converted with the mapping and every field is compared with the stored object under
the mapping's type rules (:mod:`.fields`). A sampled key whose row and object hashes
differ is left to the hash reconciliation (it may be a change in flight). A mismatch with
*equal* hashes can still be in flight for a moment, because the writer lands an object
before its cross-references; under live writes the caller re-compares mismatches after
the pipeline has caught up and reports only those that persist every time.

On a replicated collection the sample reads the asked node's copy at ONE (a query above
ONE would read-repair with its projection, :mod:`.replicas`). A replica that lags with
the same content hash (the object landed there, its references not yet) is then read
by id at the verify level, which repairs it from the full newest object, and compared
again: only what still differs counts.
"""

from __future__ import annotations

import sqlite3
import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

from sqlite_to_weaviate.mapping import HASH_PROPERTY, ConversionError, TableMapping, content_hash

from . import live
from .fields import FieldDiff, compare_object
from .replicas import reads_by_id
from .target import fetch_objects

CHUNK = 100


@dataclass(frozen=True)
class SampleMismatch:
    uuid: uuid_mod.UUID
    key: tuple
    diffs: list[FieldDiff]
    tenant: str | None = None


def compare_sample(conn: sqlite3.Connection, client: Any, table: TableMapping, keys: list[tuple]) -> tuple[int, list[SampleMismatch]]:
    """Compare the sampled rows field by field; returns (rows compared, mismatches)."""
    compared = 0
    mismatches: list[SampleMismatch] = []
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        conn.execute("BEGIN")
        try:
            rows = live.read_rows(conn, table, chunk)
        finally:
            conn.execute("COMMIT")
        expected = {}
        for key, row in rows.items():
            try:
                expected[key] = table.to_object(row)
            except ConversionError:
                continue  # reported by the reconciliation as a conversion error
        hashes = {key: content_hash(table, row) for key, row in rows.items()}
        count, found = _compare(client, table, expected, hashes)
        compared += count
        if found and reads_by_id(client, table.collection):
            for tenant in {m.tenant for m in found}:
                client.get_objects(table.collection, tenant, [m.uuid for m in found if m.tenant == tenant])
            _, found = _compare(client, table, {m.key: expected[m.key] for m in found}, hashes)
        mismatches.extend(found)
    return compared, mismatches


def _compare(client: Any, table: TableMapping, expected: dict[tuple, Any],
             hashes: dict[tuple, str]) -> tuple[int, list[SampleMismatch]]:
    """(objects compared, mismatches) for the expected objects whose stored hash is the row's."""
    compared = 0
    mismatches: list[SampleMismatch] = []
    objects = fetch_objects(client, table, [o.uuid for o in expected.values()], full=True)
    for key, obj in expected.items():
        stored = objects.get(obj.uuid)
        if stored is None or stored.properties.get(HASH_PROPERTY) != hashes[key]:
            continue  # missing or stale: the hash reconciliation decides
        compared += 1
        diffs = compare_object(table, obj, stored.properties, stored.vector, stored.references)
        if diffs:
            mismatches.append(SampleMismatch(obj.uuid, key, diffs, stored.tenant))
    return compared, mismatches
