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
"""

from __future__ import annotations

import sqlite3
import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

from sqlite_to_weaviate.mapping import HASH_PROPERTY, ConversionError, TableMapping, content_hash

from . import live
from .fields import FieldDiff, compare_object
from .target import fetch_objects

CHUNK = 100


@dataclass(frozen=True)
class SampleMismatch:
    uuid: uuid_mod.UUID
    key: tuple
    diffs: list[FieldDiff]


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
        objects = fetch_objects(client, table, [o.uuid for o in expected.values()], full=True)
        for key, obj in expected.items():
            stored = objects.get(obj.uuid)
            if stored is None or stored.properties.get(HASH_PROPERTY) != content_hash(table, rows[key]):
                continue  # missing or stale: the hash reconciliation decides
            compared += 1
            diffs = compare_object(table, obj, stored.properties, stored.vector, stored.references)
            if diffs:
                mismatches.append(SampleMismatch(obj.uuid, key, diffs))
    return compared, mismatches
