"""Default mapping from the live SQLite schema, with the config file's overrides applied.

Only tables with a declared PRIMARY KEY are mapped: rowids of other tables are
renumbered by VACUUM, so they cannot give stable object ids. Skipped tables are
reported in ``Mapping.skipped`` with the reason, never silently dropped. SQLite's own
tables and the tables sqlite-to-weaviate created (its registry says which; a name
prefix proves nothing) are not the app's data and are left out entirely.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import dataclasses
from dataclasses import dataclass

from sqlite_to_weaviate.store import registry as tool_objects

from .config_file import ColumnConfig, MappingConfig, TableConfig
from .errors import MappingError
from .model import ColumnMapping, Mapping, ReferenceMapping, TableMapping
from .vectors import EmbeddedVector
from .vector_length import sampled_vector_length
from .naming import HASH_PROPERTY, collection_name, property_name, toml_key
from .types import DataType
from .versions import apply_recorded_versions, check_reference_targets, embedded_vectors

_USING = re.compile(r"\bUSING\s+[\"'`\[]?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
NO_PRIMARY_KEY = "no declared primary key: rowids are unstable under VACUUM; add a PRIMARY KEY or exclude the table"
VIEW = "view: it stores no rows of its own; the tables it reads are migrated (map a table, not a view)"


@dataclass(frozen=True)
class SourceColumn:
    """One row of ``pragma_table_xinfo``: what the reflection needs of a column."""

    name: str
    declared_type: str
    pk_position: int
    generated: bool


def infer_type(declared_type: str) -> tuple[DataType, str | None]:
    """Default Weaviate type from the declared column type: (type, json_as).

    Names first (BOOL -> boolean, JSON -> text holding JSON, DATE/TIME -> date), then
    SQLite's affinity rules: INT -> int; CHAR/CLOB/TEXT -> text; BLOB -> blob; no type ->
    text; REAL/FLOA/DOUB and NUMERIC affinity (DECIMAL, NUMERIC) -> number. ``ANY`` (a
    STRICT table's "any value" column) -> text, which holds every number exactly too.
    """
    declared = declared_type.upper()
    if declared.strip() == "ANY":
        return DataType.TEXT, None
    if "BOOL" in declared:
        return DataType.BOOLEAN, None
    if "JSON" in declared:
        return DataType.TEXT, "text"
    if "DATE" in declared or "TIME" in declared:
        return DataType.DATE, None
    if "INT" in declared:
        return DataType.INT, None
    if any(word in declared for word in ("CHAR", "CLOB", "TEXT")):
        return DataType.TEXT, None
    if "BLOB" in declared:
        return DataType.BLOB, None
    if not declared.strip():
        return DataType.TEXT, None
    return DataType.NUMBER, None


def _key_type(declared_type: str) -> DataType | None:
    """Affinity of a key column, used to coerce reference values like SQLite would."""
    declared = declared_type.upper()
    if "INT" in declared:
        return DataType.INT
    if any(word in declared for word in ("CHAR", "CLOB", "TEXT")):
        return DataType.TEXT
    return None


def _cursor(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor returning plain tuples whatever row_factory the app set on its connection."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor


def list_tables(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, kind) of every table and view in the main schema; kind is table, virtual, shadow or view.

    Only ``main``: databases the application ATTACHes to its own connections are other
    files, never captured (docs/capture.md).
    """
    try:
        rows = _cursor(conn).execute(
            "SELECT name, type FROM pragma_table_list WHERE schema = 'main' ORDER BY name"
        ).fetchall()
        return [(name, kind) for name, kind in rows if kind in ("table", "virtual", "shadow", "view")]
    except sqlite3.OperationalError:  # SQLite < 3.37 has no pragma_table_list
        rows = _cursor(conn).execute(
            "SELECT name, type, sql FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
        ).fetchall()
        return [(name, "view" if kind == "view" else "virtual" if (sql or "").upper().startswith("CREATE VIRTUAL")
                 else "table") for name, kind, sql in rows]


def unrecognised_shadow_tables(conn: sqlite3.Connection, names: list[str]) -> dict[str, tuple[str, str]]:
    """Tables that look like shadow tables of a virtual table whose module is not loaded here.

    SQLite recognises a shadow table (``<vtab>_<suffix>``) only through the virtual table's
    module. An application may load a module this process does not have (sqlite-vec's
    ``vec0``, a custom FTS tokenizer build, ...): its shadow tables then look like ordinary
    tables. Returns table -> (virtual table, module) for every ordinary-looking table named
    ``<vtab>_...`` of such a virtual table.
    """
    cursor = _cursor(conn)
    try:
        loaded = {row[0].lower() for row in cursor.execute("SELECT name FROM pragma_module_list")}
    except sqlite3.OperationalError:  # built without the introspection pragmas: nothing to go on
        return {}
    unloaded: dict[str, str] = {}
    for name, sql in cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall():
        match = _USING.search(sql or "")
        if (sql or "").lstrip().upper().startswith("CREATE VIRTUAL") and match and match.group(1).lower() not in loaded:
            unloaded[name] = match.group(1)
    found: dict[str, tuple[str, str]] = {}
    for name in names:
        for vtab, module in unloaded.items():
            if name != vtab and name.lower().startswith(vtab.lower() + "_"):
                found[name] = (vtab, module)
    return found


def table_columns(conn: sqlite3.Connection, table: str) -> list[SourceColumn]:
    """Columns including generated ones (hidden 2 and 3); hidden 1 is virtual-table only."""
    rows = _cursor(conn).execute(
        'SELECT name, type, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid', (table,)
    ).fetchall()
    return [SourceColumn(name, declared or "", pk, hidden in (2, 3)) for name, declared, pk, hidden in rows if hidden != 1]


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _check_names_exist(config: MappingConfig, key: str, names: tuple[str, ...] | list[str], existing: list[str]) -> None:
    for name in names:
        if name not in existing:
            raise MappingError(
                f"{config.source}: {key}: table {name!r} does not exist in the database — "
                f"{_suggest(name, existing)}tables: {', '.join(existing)}"
            )


def reflect_mapping(conn: sqlite3.Connection, config: MappingConfig | None = None) -> Mapping:
    """Build the mapping of every user table with a primary key, applying ``config``."""
    config = config or MappingConfig()
    ours = tool_objects.tool_tables(conn)
    all_tables = [(name, kind) for name, kind in list_tables(conn)
                  if not name.lower().startswith("sqlite_") and tool_objects.fold(name) not in ours]
    names = [name for name, _ in all_tables]
    _check_names_exist(config, "include", config.include or (), names)
    _check_names_exist(config, "exclude", config.exclude, names)
    _check_names_exist(config, "tables", list(config.tables), names)

    skipped: dict[str, str] = {}
    columns_of: dict[str, list[SourceColumn]] = {}
    unrecognised = unrecognised_shadow_tables(conn, names)
    for name, kind in all_tables:
        if config.include is not None and name not in config.include:
            skipped[name] = "not listed in `include` of the mapping config"
        elif name in config.exclude:
            skipped[name] = "listed in `exclude` of the mapping config"
        elif kind == "table" and name in unrecognised and config.include is None and name not in config.tables:
            vtab, module = unrecognised[name]
            skipped[name] = (
                f"probably a shadow table of virtual table {vtab!r}, whose module {module!r} is not loaded here "
                "(so SQLite cannot tell): internal storage; list it in `include` if it is application data"
            )
        elif kind == "virtual":
            skipped[name] = "virtual table (e.g. FTS): not supported; map the table holding its content instead"
        elif kind == "shadow":
            skipped[name] = "shadow table of a virtual table: internal storage, not application data"
        elif kind == "view":
            skipped[name] = VIEW
        else:
            columns = table_columns(conn, name)
            if not any(c.pk_position for c in columns):
                skipped[name] = NO_PRIMARY_KEY
            else:
                columns_of[name] = columns
    for name in config.tables:
        if name in skipped:
            raise MappingError(
                f"{config.source}: tables.{name}: table {name!r} is configured but not mapped ({skipped[name]})"
            )

    collections: dict[str, str] = {}
    for table in columns_of:
        table_config = config.tables.get(table, TableConfig())
        collections[table] = table_config.collection or collection_name(table)
    _check_unique_collections(collections)

    tables = {
        table: _with_vector_lengths(conn, _table_mapping(config, table, columns, collections, columns_of),
                                    config.tables.get(table, TableConfig()))
        for table, columns in columns_of.items()
    }
    check_reference_targets(config.source, tables)
    tables = apply_recorded_versions(conn, tables)
    return Mapping(tables=tables, skipped=skipped, embedders=dict(config.embedders),
                   embedding_cache=config.embedding_cache)


def _with_vector_lengths(conn: sqlite3.Connection, table: TableMapping, table_config: TableConfig) -> TableMapping:
    """The length every vector column's vectors must have: declared, else sampled (:mod:`.vector_length`)."""
    declared = dict(table_config.vector_dimensions)
    lengths = []
    for column in table.vector_columns:
        length = declared.get(column) or sampled_vector_length(conn, table.table, column)
        if length is not None:
            lengths.append((column, length))
    return dataclasses.replace(table, vector_lengths=tuple(lengths)) if lengths else table


def _check_unique_collections(collections: dict[str, str]) -> None:
    seen: dict[str, str] = {}
    for table, name in collections.items():
        other = seen.get(name.lower())
        if other is not None:
            raise MappingError(
                f"tables {other!r} and {table!r} both map to collection {name!r}; "
                f"set `collection` for one of them in the mapping config"
            )
        seen[name.lower()] = table


def _table_mapping(config: MappingConfig, table: str, columns: list[SourceColumn],
                   collections: dict[str, str], columns_of: dict[str, list[SourceColumn]]) -> TableMapping:
    table_config = config.tables.get(table, TableConfig())
    path = f"{config.source}: tables.{table}"
    column_names = [c.name for c in columns]

    def require_column(key: str, name: str | None) -> None:
        if name is not None and name not in column_names:
            raise MappingError(
                f"{path}.{key}: column {name!r} does not exist in table {table!r} — "
                f"{_suggest(name, column_names)}columns: {', '.join(column_names)}"
            )

    for name in table_config.columns:
        require_column(f"columns.{name}", name)
    for name in table_config.exclude_columns:
        require_column("exclude_columns", name)
    require_column("vector_column", table_config.vector_column)
    for vector_name, name in table_config.vectors:
        require_column(f"vectors.{vector_name}.column", name)
    require_column("tenant_column", table_config.tenant_column)

    vector_columns = {table_config.vector_column} | {c for _, c in table_config.vectors}
    mapped: list[ColumnMapping] = []
    for column in columns:
        column_config = table_config.columns.get(column.name, ColumnConfig())
        if column.name in table_config.exclude_columns or column_config.exclude or column.name in vector_columns:
            continue
        mapped.append(_column_mapping(config, table, column, column_config))

    references = []
    for index, reference in enumerate(table_config.references):
        require_column(f"references[{index}].column", reference.column)
        target_columns = columns_of.get(reference.target)
        if target_columns is None:
            raise MappingError(
                f"{path}.references[{index}].target: table {reference.target!r} is not mapped — "
                f"{_suggest(reference.target, list(columns_of))}mapped tables: {', '.join(columns_of)}"
            )
        target_key = [c for c in target_columns if c.pk_position]
        if len(target_key) != 1:
            raise MappingError(
                f"{path}.references[{index}]: target {reference.target!r} has a composite primary key; "
                "references to composite keys are not supported"
            )
        references.append(ReferenceMapping(
            column=reference.column, property=reference.property, target_table=reference.target,
            target_collection=collections[reference.target], target_key_type=_key_type(target_key[0].declared_type),
        ))

    metadata = table_config.metadata if table_config.metadata is not None else config.metadata
    embedded = embedded_vectors(table, table_config, mapped, path)
    _check_unique_properties(path, mapped, references, metadata, embedded)
    vectorizer = table_config.vectorizer or config.vectorizer
    if embedded and vectorizer not in (None, "none"):
        raise MappingError(f"{path}: vectors computed by an embedder cannot be combined with vectorizer "
                           f"{vectorizer!r}; set vectorizer = \"none\" for this table")
    return TableMapping(
        table=table,
        collection=collections[table],
        primary_key=tuple(c.name for c in sorted((c for c in columns if c.pk_position), key=lambda c: c.pk_position)),
        columns=tuple(mapped),
        vector_column=table_config.vector_column,
        named_vectors=table_config.vectors,
        tenant_column=table_config.tenant_column,
        references=tuple(references),
        vectorizer=None if vectorizer in (None, "none") else vectorizer,
        metadata=metadata,
        description=table_config.description,
        embedded_vectors=embedded,
        desired_vectors=embedded,
    )


def _derived_property(table: str, column: str) -> str:
    """The derived property name, or an error naming the table and the config key that fixes it."""
    try:
        return property_name(column)
    except MappingError as exc:
        raise MappingError(
            f"table {table!r}: {exc} "
            f"([tables.{toml_key(table)}.columns.{toml_key(column)}] property = \"...\")"
        ) from None


def _column_mapping(config: MappingConfig, table: str, column: SourceColumn, column_config: ColumnConfig) -> ColumnMapping:
    inferred, json_as = infer_type(column.declared_type)
    data_type = column_config.type or inferred
    if column_config.date_unit and data_type is not DataType.DATE:
        raise MappingError(
            f"{config.source}: column {column.name!r}: date_unit is set but the column maps to {data_type.value}; "
            'add type = "date"'
        )
    if data_type is DataType.OBJECT:
        json_as = "object"
    elif column_config.json_as == "text" or (json_as == "text" and data_type is DataType.TEXT):
        json_as = "text"
    else:
        json_as = None
    return ColumnMapping(
        column=column.name,
        property=column_config.property or _derived_property(table, column.name),
        data_type=data_type,
        vectorize=bool(column_config.vectorize),
        index_filterable=True if column_config.filterable is None else column_config.filterable,
        index_searchable=True if column_config.searchable is None else column_config.searchable,
        json_as=json_as,
        date_unit=column_config.date_unit or "s",
        naive_timezone=column_config.naive_timezone or config.naive_timezone,
        default=column_config.default,
        nested=column_config.nested,
        declared_type=column.declared_type,
        description=column_config.description,
    )


def _check_unique_properties(path: str, columns: list[ColumnMapping], references: list[ReferenceMapping],
                             metadata, embedded: tuple[EmbeddedVector, ...] = ()) -> None:
    """Weaviate property names must be unique (compared case-insensitively to be safe)."""
    from sqlite_to_weaviate.embed.text import digest_property

    owners: dict[str, str] = {HASH_PROPERTY.lower(): "the content hash"}
    owners.update({digest_property(v.name).lower(): f"the fingerprint of vector {v.name!r}" for v in embedded})
    entries = [(c.property, f"column {c.column!r}") for c in columns]
    entries += [(r.property, f"reference on column {r.column!r}") for r in references]
    if metadata.property:
        entries.append((metadata.property, "the metadata object"))
    else:
        entries += [(name, "metadata") for name, _ in metadata.fields()]
    for name, owner in entries:
        other = owners.get(name.lower())
        if other is not None:
            raise MappingError(
                f"{path}: {owner} and {other} both map to property {name!r}; "
                "set a different `property` for one of them in the mapping config"
            )
        owners[name.lower()] = owner
