"""A starting mapping from the data itself: what the declared types cannot tell.

SQLite's declared types are hints; the values decide what Weaviate can hold. This module
reads every row of every mapped table (keyset pages, read-only, memory flat) and profiles
each mapped column's values, then suggests, each with a comment giving the reason and the
counts:

* a type that keeps every value when the current one refuses some -- integers beyond
  ±2^53 in an ``int`` column -> ``text``, fractional values -> ``number``, BLOBs that are
  not UTF-8 in a ``text`` column -> ``blob``: the first of int, number, boolean, text,
  blob that converts **every** value of the column (checked, not guessed);
* ``date`` for a text column whose every value is ISO 8601 date text;
* ``vector_column`` (or named vectors) for a BLOB column whose every value is a float32
  array of one length that looks like an embedding (finite, moderate magnitudes);
* for a column of JSON objects with scalar members, ``type = "object"`` with its keys,
  **commented out**: an object column refuses a later row with a key not listed, so it
  is the user's choice; text keeps any JSON.

Explicit ``type`` settings of the user's own mapping are kept unless they refuse values.
The result starts from the user's mapping file (every setting kept) and is re-checked by
reflecting it against the database before it is returned.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .column_profile import ColumnProfile, _converts
from .config_file import ColumnConfig, MappingConfig, TableConfig
from .config_writer import Comments, render_mapping_config
from .model import TableMapping, quote_identifier
from .naming import property_name
from .reflect import reflect_mapping
from .refusals import refusals_of_row
from .rows import iter_row_pages
from .types import DataType

#: Distinct sets of refused columns tracked per table (to count rows still refused after the fixes).
MAX_FAILURE_SETS = 1000

#: progress(table, rows read so far, rows in the table)
Progress = Callable[[str, int, int], None]


@dataclass
class TableProfile:
    table: TableMapping
    columns: dict[str, ColumnProfile]
    rows: int = 0
    refused_rows: int = 0
    failure_sets: Counter = field(default_factory=Counter)   # frozenset of refused columns -> rows
    other_refusals: Counter = field(default_factory=Counter)  # (column, kind) not fixable by a type -> rows

    def _may_refuse_outside_columns(self, row: dict[str, Any]) -> bool:
        """A NULL key value, a vector or a tenant can refuse a row whose columns all convert."""
        return bool(self.table.vector_column or self.table.named_vectors or self.table.tenant_column
                    or any(row.get(k) is None for k in self.table.primary_key))

    def observe(self, row: dict[str, Any]) -> None:
        self.rows += 1
        failed = [name for name, profile in self.columns.items() if profile.observe(row.get(name))]
        if failed or self._may_refuse_outside_columns(row):
            for error in refusals_of_row(self.table, row):
                if error.column not in self.columns:      # key, vector or tenant: no column type fixes it
                    failed.append(error.column)
                    self.other_refusals[(error.column, error.kind)] += 1
        if failed:
            self.refused_rows += 1
            key = frozenset(failed)
            if key in self.failure_sets or len(self.failure_sets) < MAX_FAILURE_SETS:
                self.failure_sets[key] += 1
            else:
                self.failure_sets[frozenset({"*"})] += 1

    def still_refused(self, fixed: set[str]) -> int:
        return sum(n for columns, n in self.failure_sets.items() if not columns <= fixed)


@dataclass
class Suggestion:
    """The suggested config, the comments explaining it, and a summary for the terminal."""

    config: MappingConfig
    comments: Comments               # above each section
    trailing: Comments               # below each section's keys (commented-out settings)
    notes: list[str]                 # one line per suggestion
    rows_read: int
    refused_before: int              # rows the current mapping refuses
    refused_after: int               # rows the suggested mapping still refuses (no type can hold them)
    source: str = ""

    def render(self) -> str:
        header = [
            f"Mapping suggested by `sqlite-to-weaviate suggest-mapping` from {self.source}",
            f"({self.rows_read} row(s) read). Each suggestion says why; review them, then pass this file",
            "with --mapping. Reference: docs/mapping.md.",
            f"Rows refused: {self.refused_before} with the mapping it started from, {self.refused_after} with this one.",
        ]
        if not self.notes:
            header.append("The data needs no change to the mapping it started from.")
        return render_mapping_config(self.config, comments=self.comments, trailing=self.trailing, header=header)


def profile_table(conn: sqlite3.Connection, table: TableMapping, base: TableConfig,
                  progress: Progress | None = None, page_size: int = 1000) -> TableProfile:
    """Read every row of ``table`` (keyset pages) and profile each mapped column."""
    keys = set(table.primary_key)
    profile = TableProfile(table, {
        c.column: ColumnProfile(c, explicit_type=(base.columns.get(c.column, ColumnConfig()).type is not None),
                                is_key=c.column in keys or any(r.column == c.column for r in table.references)
                                or c.column == table.tenant_column)
        for c in table.columns
    })
    names = list(table.source_columns)
    total = conn.execute(f"SELECT count(*) FROM {quote_identifier(table.table)}").fetchone()[0]
    for batch in iter_row_pages(conn, table, page_size):
        for values in batch:
            profile.observe(dict(zip(names, values)))
        if progress is not None:
            progress(table.table, profile.rows, total)
    return profile


def suggest_mapping(conn: sqlite3.Connection, base: MappingConfig | None = None, *, source: str = "",
                    progress: Progress | None = None) -> Suggestion:
    """Profile every mapped table of ``conn`` (read-only) and suggest a mapping config; see the module docstring."""
    base = base or MappingConfig()
    mapping = reflect_mapping(conn, base)
    tables = dict(base.tables)
    comments: Comments = {}
    trailing: Comments = {}
    notes: list[str] = []
    rows_read = refused_before = refused_after = 0
    for table in mapping.collections_in_order():
        table_config = tables.get(table.table, TableConfig())
        profile = profile_table(conn, table, table_config, progress)
        rows_read += profile.rows
        refused_before += profile.refused_rows
        table_config, fixed = _apply(profile, table_config, comments, trailing, notes)
        refused_after += profile.still_refused(fixed)
        if table_config != TableConfig() or table.table in tables:
            tables[table.table] = table_config
    config = dataclasses.replace(base, tables=tables, source="<suggested>")
    reflect_mapping(conn, config)   # the suggestion must be a valid mapping of this database
    return Suggestion(config, comments, trailing, notes, rows_read, refused_before, refused_after, source=source)


def _apply(profile: TableProfile, table_config: TableConfig, comments: Comments, trailing: Comments,
           notes: list[str]) -> tuple[TableConfig, set[str]]:
    """Fold one table's suggestions into its config; returns the config and the columns fixed."""
    name = profile.table.table
    columns = dict(table_config.columns)
    fixed: set[str] = set()
    vectors: list[str] = []
    for column_name, p in profile.columns.items():
        path = ("tables", name, "columns", column_name)
        current = columns.get(column_name, ColumnConfig())
        old_type = p.column.data_type.value
        if p.refused:
            reasons = ", ".join(f"{n} {kind}" for kind, n in p.refused.most_common())
            largest = f", largest {p.largest_beyond}" if p.largest_beyond is not None else ""
            fix = p.fix()
            why = (f"{column_name}: {sum(p.refused.values())} of {p.non_null} non-NULL value(s) are refused as "
                   f'type "{old_type}" ({reasons}{largest}; e.g. {p.refusal_example})')
            if fix is None:
                comments.setdefault(path, []).extend(
                    [why, "no type converts every value: fix the data, or exclude the column (exclude = true)"])
                columns[column_name] = current
                notes.append(f"{name}.{column_name}: {sum(p.refused.values())} value(s) no type can hold "
                             "(see the comment in the file)")
                continue
            comments.setdefault(path, []).extend(
                [why, f'"{fix.value}" converts all {p.non_null} exactly (checked on every value).'])
            columns[column_name] = dataclasses.replace(current, type=fix, json_as=None, nested=())
            fixed.add(column_name)
            notes.append(f'{name}.{column_name}: type = "{fix.value}" ({sum(p.refused.values())} value(s) refused '
                         f'as "{old_type}": {reasons})')
        elif p.date_possible and p.dates and (p.column.default is None or _converts(p.column.default, DataType.DATE)):
            zone = (f" ({p.naive_dates} without a zone: read in naive_timezone \"{p.column.naive_timezone}\")"
                    if p.naive_dates else "")
            comments.setdefault(path, []).append(
                f"{column_name}: all {p.dates} non-NULL value(s) are ISO 8601 date text{zone}; as \"date\" they "
                "become RFC 3339 dates Weaviate can filter and sort by.")
            columns[column_name] = dataclasses.replace(current, type=DataType.DATE)
            notes.append(f'{name}.{column_name}: type = "date" ({p.dates} ISO 8601 value(s))')
        elif p.vector_possible and p.vector_length:
            vectors.append(column_name)
        elif p.column.data_type is DataType.TEXT and p.nested() is not None:
            nested = p.nested() or {}
            comments.setdefault(path, []).extend([
                f"{column_name}: all {p.non_null} non-NULL value(s) are JSON objects with {len(nested)} scalar key(s).",
                "To filter on the keys, uncomment the two lines below. Text (the default) keeps any JSON; an "
                "object column refuses a later row whose JSON has a key not listed here."])
            trailing.setdefault(path, []).extend(['# type = "object"', f"# nested = {_inline(nested)}"])
            columns[column_name] = current
            notes.append(f"{name}.{column_name}: JSON objects: object type suggested in a comment (opt-in)")
        elif p.column.json_as == "text" and p.json_why_not and p.non_null:
            comments.setdefault(path, []).append(f"{column_name}: JSON kept as text: {p.json_why_not}.")
            columns[column_name] = current
    for (column, kind), n in profile.other_refusals.items():
        comments.setdefault(("tables", name), []).append(
            f"{n} row(s) are refused for {column}: {kind}; no column type fixes that (fix the data).")
        notes.append(f"{name}: {n} row(s) refused for {column}: {kind} (fix the data)")
    config = dataclasses.replace(table_config, columns=columns)
    if vectors:
        config = _with_vectors(profile, config, vectors, comments, notes)
    return config, fixed


def _with_vectors(profile: TableProfile, config: TableConfig, candidates: list[str], comments: Comments,
                  notes: list[str]) -> TableConfig:
    name = profile.table.table
    path = ("tables", name)
    described = [f"{c} ({profile.columns[c].non_null} value(s) of {profile.columns[c].vector_length // 4} float32)"
                 for c in candidates]
    if config.vector_column or config.vectors or config.embedded_vectors or profile.table.vectorizer:
        comments.setdefault(path, []).append(
            f"vector candidate(s) not applied (the table already has a vector or a vectorizer): {', '.join(described)}")
        return config
    comments.setdefault(path, []).append(
        f"{', '.join(described)}: every non-NULL value is a little-endian float32 array of one length with "
        "finite, moderate values: used as the object's vector instead of a blob property (NULL means no "
        "vector). Remove the line to keep a blob property.")
    for column in candidates:
        notes.append(f"{name}.{column}: vector ({profile.columns[column].vector_length // 4} dimensions)")
    # every value had this length: declared, so a later vector of another length is refused
    dimensions = tuple((column, profile.columns[column].vector_length // 4) for column in candidates)
    if len(candidates) == 1:
        return dataclasses.replace(config, vector_column=candidates[0], vector_dimensions=dimensions)
    return dataclasses.replace(config, vectors=tuple((property_name(column), column) for column in candidates),
                               vector_dimensions=dimensions)


def _inline(nested: dict[str, str]) -> str:
    from .config_writer import toml_value

    return toml_value(nested)
