"""Introspection of the live SQLite schema: columns, primary key, unique indexes, hash.

Everything capture generates is derived from ``pragma_table_xinfo`` and
``pragma_index_list``/``pragma_index_xinfo`` at install time; the hash of that description
is stored so later schema changes (drift) can be detected by recomputing it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass

from sqlite_to_weaviate.store import registry as tool_objects

from .errors import CaptureError

MAX_PK_COLUMNS = 8


@dataclass(frozen=True)
class Column:
    """One column as ``pragma_table_xinfo`` reports it."""

    cid: int
    name: str
    decl_type: str
    pk: int  # 1-based position in the primary key, 0 if not part of it
    hidden: int  # 0 normal, 1 virtual-table hidden, 2 virtual generated, 3 stored generated

    @property
    def generated(self) -> bool:
        return self.hidden in (2, 3)

    @property
    def affinity(self) -> str:
        """SQLite's column affinity rules (section 3.1 of the datatype docs)."""
        t = self.decl_type.upper()
        if "INT" in t:
            return "INTEGER"
        if "CHAR" in t or "CLOB" in t or "TEXT" in t:
            return "TEXT"
        if "BLOB" in t or t == "":
            return "BLOB"
        if "REAL" in t or "FLOA" in t or "DOUB" in t:
            return "REAL"
        return "NUMERIC"


@dataclass(frozen=True)
class UniqueIndex:
    """A UNIQUE constraint or unique index other than the primary key, or a primary key with
    a non-BINARY collation (NOCASE, RTRIM): there ``INSERT OR REPLACE`` of ``'Key'`` silently
    replaces the row ``'KEY'``, whose key is a different one to every other component.

    ``columns`` pairs each key column with its index collation. ``expression`` is true when
    some key part is an expression: such an index cannot be mirrored in a trigger.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    partial: bool
    expression: bool


@dataclass(frozen=True)
class TableInfo:
    """What capture needs to know about one table."""

    name: str
    columns: tuple[Column, ...]
    pk: tuple[str, ...]
    without_rowid: bool
    unique_indexes: tuple[UniqueIndex, ...]

    @property
    def writable_columns(self) -> tuple[Column, ...]:
        """Columns a statement can assign (generated ones follow from these)."""
        return tuple(c for c in self.columns if not c.generated)


def canonical_table_name(conn: sqlite3.Connection, table: str) -> str | None:
    """The table's name as stored in the schema (names are ASCII-case-insensitive), or None."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
            (table,),
        ).fetchone()
    return None if row is None else row[0]


def user_tables(conn: sqlite3.Connection) -> list[str]:
    """Every ordinary table except SQLite's internal ones and the tables the tool created.

    A user table whose name merely starts with ``_s2w_`` is a user table like any other:
    only the registry (:mod:`sqlite_to_weaviate.store.registry`) says what is the tool's.
    """
    rows = conn.execute(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    ours = tool_objects.tool_tables(conn)
    return [r[0] for r in rows if tool_objects.fold(r[0]) not in ours]


def no_pk_message(table: str) -> str:
    return (
        f"table {table!r} has no declared PRIMARY KEY: its rowids are unstable (VACUUM renumbers "
        "them), so its rows cannot be identified across stores; add a PRIMARY KEY or exclude "
        "the table"
    )


def table_info(conn: sqlite3.Connection, table: str) -> TableInfo:
    """Describe ``table``; raise :class:`CaptureError` if it cannot be captured."""
    name = canonical_table_name(conn, table)
    if name is None:
        raise CaptureError(f"table {table!r} does not exist in the main database")
    if name.lower().startswith("sqlite_") or tool_objects.fold(name) in tool_objects.tool_tables(conn):
        raise CaptureError(f"table {name!r} is internal (SQLite's or sqlite-to-weaviate's own) and is never captured")
    tl = conn.execute(
        "SELECT type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", (name,)
    ).fetchone()
    if tl[0] != "table":
        raise CaptureError(f"{name!r} is a {tl[0]}, not an ordinary table; only tables can be captured")
    columns = tuple(
        Column(cid=r[0], name=r[1], decl_type=r[2] or "", pk=r[3], hidden=r[4])
        for r in conn.execute(
            "SELECT cid, name, type, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid", (name,)
        )
    )
    pk = tuple(c.name for c in sorted((c for c in columns if c.pk), key=lambda c: c.pk))
    if not pk:
        raise CaptureError(no_pk_message(name))
    if len(pk) > MAX_PK_COLUMNS:
        raise CaptureError(
            f"table {name!r} has a {len(pk)}-column primary key; capture supports at most "
            f"{MAX_PK_COLUMNS} key columns (the outbox has k1..k{MAX_PK_COLUMNS})"
        )
    uniques = []
    for idx_name, partial, origin in conn.execute(
        'SELECT name, partial, origin FROM pragma_index_list(?) WHERE "unique" ORDER BY name',
        (name,),
    ).fetchall():
        parts = conn.execute(
            "SELECT cid, name, coll FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno",
            (idx_name,),
        ).fetchall()
        if origin == "pk" and all((coll or "BINARY").upper() == "BINARY" for _, _, coll in parts):
            continue  # a conflict on a binary key replaces a row with the very same key: nothing to add
        expression = any(cid < 0 for cid, _, _ in parts)
        uniques.append(
            UniqueIndex(
                name=idx_name,
                columns=tuple((n, coll or "BINARY") for cid, n, coll in parts if cid >= 0),
                partial=bool(partial),
                expression=expression,
            )
        )
    return TableInfo(
        name=name,
        columns=columns,
        pk=pk,
        without_rowid=bool(tl[1]),
        unique_indexes=tuple(uniques),
    )


def describe(info: TableInfo) -> dict:
    """A JSON-able description of the parts of a table's schema that capture depends on."""
    return {
        "columns": [[c.name, c.decl_type, c.pk, c.hidden] for c in info.columns],
        "without_rowid": info.without_rowid,
        "unique": [
            [u.name, [list(c) for c in u.columns], u.partial, u.expression]
            for u in info.unique_indexes
        ],
    }


def hash_description(description: dict, trigger_sql: list[str]) -> str:
    """sha256 over the schema description plus the trigger SQL generated from it."""
    payload = json.dumps({"schema": description, "triggers": trigger_sql}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
