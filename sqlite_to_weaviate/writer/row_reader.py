"""Read the current rows for a set of changed keys: the "read at dispatch" half of the design.

The outbox stores keys only; what reaches Weaviate is whatever the row is *now*. A missing
row means the key was deleted. All keys of one batch are read in one short read
transaction, so the batch is a consistent snapshot and no long read starves WAL
checkpoints.

A TEXT value that is not UTF-8 would fail the whole SELECT in Python's sqlite3; the chunk
is then read again leniently (:mod:`sqlite_to_weaviate.sqlite_text`), the value arrives as
``InvalidText``, and only its row becomes a dead letter when it is converted. Keys holding
such a value are bound back as the same TEXT. The common path is unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlite_to_weaviate.mapping import TableMapping
from sqlite_to_weaviate.mapping.model import quote_identifier
from sqlite_to_weaviate.sqlite_text import InvalidText, bind, fetch_all, marker

CHUNK = 400  # keys per SELECT; far below SQLite's bound-parameter limit even for 8-column keys


def read_rows(conn: sqlite3.Connection, table: TableMapping, keys: Sequence[tuple]) -> dict[tuple, dict[str, Any]]:
    """Map each existing key to its row (column -> value); absent keys are deleted rows."""
    columns = table.source_columns
    pk = table.primary_key
    pk_positions = [columns.index(c) for c in pk]
    base = table.select_sql()
    found: dict[tuple, dict[str, Any]] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = list(keys[start:start + CHUNK])
        exact = any(isinstance(v, InvalidText) for k in chunk for v in k)
        if len(pk) == 1:
            marks = ", ".join(marker(k[0]) for k in chunk) if exact else ", ".join("?" * len(chunk))
            where = f"{quote_identifier(pk[0])} IN ({marks})"
        else:
            if exact:
                rows_sql = ", ".join("(" + ", ".join(marker(v) for v in k) + ")" for k in chunk)
            else:
                rows_sql = ", ".join(["(" + ", ".join("?" * len(pk)) + ")"] * len(chunk))
            where = f"({', '.join(quote_identifier(c) for c in pk)}) IN (VALUES {rows_sql})"
        params: list[Any] = [bind(v) for k in chunk for v in k] if exact else [v for k in chunk for v in k]
        for values in fetch_all(conn, f"{base} WHERE {where}", params):
            key = tuple(values[i] for i in pk_positions)
            found[key] = dict(zip(columns, values))
    return found
