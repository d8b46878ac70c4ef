"""The mapping model: immutable descriptions of tables, columns and the objects they become.

Everything here is a frozen dataclass so a mapping can be shared between threads and
sent to other processes without anyone mutating it. It is longer than 400 lines because
``TableMapping`` keeps every rule of turning one row into its objects (one per collection
version of a table with embedder vectors) in one class. ``TableMapping.to_object`` is the
single place where a row becomes a :class:`WeaviateObject`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import uuid
from collections.abc import Mapping as RowMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import convert
from .errors import ConversionError, MappingError, ValueConversionError
from .hashing import content_hash as _content_hash
from .identity import key_text, object_uuid, object_uuid_bytes
from .naming import HASH_PROPERTY
from .vectors import CollectionVersion, EmbeddedVector
from .types import DataType

_TENANT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

# refusal kinds raised here (ConversionError.kind); the value converters' are in convert.py
NULL_KEY = "NULL primary-key value"
BAD_TENANT = "invalid tenant"


def quote_identifier(name: str) -> str:
    """SQLite identifier quoting: double quotes, embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class ColumnMapping:
    """One SQLite column mapped to one Weaviate property.

    ``default`` replaces a NULL before conversion (the preset's "Untitled
    Conversation"); without it NULL means the property is absent.
    ``json_as`` is "text"/"object" for JSON columns, None otherwise.
    """

    column: str
    property: str
    data_type: DataType
    vectorize: bool = False
    index_filterable: bool = True
    index_searchable: bool = True
    json_as: str | None = None
    date_unit: str = "s"
    naive_timezone: str = "UTC"
    default: Any = None
    nested: tuple[tuple[str, DataType], ...] = ()
    declared_type: str = ""
    description: str | None = None

    def convert(self, value: Any) -> Any:
        """Converted property value, or None when the property is absent."""
        if value is None:
            value = self.default
        return convert.convert_value(
            value,
            self.data_type,
            naive_tz=convert.resolve_timezone(self.naive_timezone),
            date_unit=self.date_unit,
            nested=self.nested,
        )


@dataclass(frozen=True)
class ReferenceMapping:
    """A foreign-key column turned into a cross-reference to the target row's object.

    The referenced uuid is ``object_uuid(target_table, (value,))``. ``target_key_type``
    (INT or TEXT, from the target key's declared type) coerces the stored value the way
    SQLite's affinity would have, so "5" in the FK column finds the row with key 5.
    """

    column: str
    property: str
    target_table: str
    target_collection: str
    target_key_type: DataType | None = None

    def target_uuid(self, value: Any) -> uuid.UUID:
        if self.target_key_type is DataType.INT and isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value):
            value = int(value)
        elif self.target_key_type is DataType.INT and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif self.target_key_type is DataType.TEXT and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return object_uuid(self.target_table, (value,))


@dataclass(frozen=True)
class MetadataMapping:
    """Extra properties not taken from a column.

    ``constants``: (property, value) pairs written on every object. ``original_id``:
    property holding the primary key as text. ``migration_timestamp``: property holding
    the time the object was built — it changes on every write, which is harmless for
    verification because the content hash covers the source row only. ``property``: if
    set, all of them are nested in one object property of that name.
    """

    constants: tuple[tuple[str, Any], ...] = ()
    original_id: str | None = None
    migration_timestamp: str | None = None
    property: str | None = None

    def fields(self) -> list[tuple[str, DataType]]:
        result = [(name, constant_type(value)) for name, value in self.constants]
        if self.original_id:
            result.append((self.original_id, DataType.TEXT))
        if self.migration_timestamp:
            result.append((self.migration_timestamp, DataType.DATE))
        return result

    def is_empty(self) -> bool:
        return not (self.constants or self.original_id or self.migration_timestamp)


def constant_type(value: Any) -> DataType:
    """Weaviate type of a constant metadata value from the config file."""
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int):
        return DataType.INT
    if isinstance(value, float):
        return DataType.NUMBER
    if isinstance(value, str):
        return DataType.TEXT
    raise MappingError(f"metadata constant {value!r} must be a boolean, integer, float or string")


@dataclass(frozen=True)
class WeaviateObject:
    """A converted row, ready for a batch insert; JSON-serializable via :meth:`to_json`.

    ``embed``: named vector -> ``EmbeddedVector.spec()`` for vectors the worker computes.
    """

    uuid: uuid.UUID
    collection: str
    properties: dict[str, Any]
    vector: list[float] | dict[str, list[float]] | None = None
    references: dict[str, list[str]] = field(default_factory=dict)
    tenant: str | None = None
    content_hash: str = ""
    embed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {
            "uuid": str(self.uuid),
            "collection": self.collection,
            "properties": self.properties,
            "vector": self.vector,
            "references": self.references,
            "tenant": self.tenant,
            "content_hash": self.content_hash,
        }
        if self.embed:
            data["embed"] = self.embed
        return data

    @classmethod
    def from_json(cls, data: RowMapping[str, Any]) -> "WeaviateObject":
        return cls(
            uuid=uuid.UUID(data["uuid"]),
            collection=data["collection"],
            properties=dict(data["properties"]),
            vector=data.get("vector"),
            references={k: list(v) for k, v in (data.get("references") or {}).items()},
            tenant=data.get("tenant"),
            content_hash=data.get("content_hash", ""),
            embed=dict(data.get("embed") or {}),
        )


@dataclass(frozen=True)
class TableMapping:
    """How one SQLite table becomes one Weaviate collection."""

    table: str
    collection: str
    primary_key: tuple[str, ...]
    columns: tuple[ColumnMapping, ...]
    vector_column: str | None = None
    named_vectors: tuple[tuple[str, str], ...] = ()
    tenant_column: str | None = None
    references: tuple[ReferenceMapping, ...] = ()
    vectorizer: str | None = None
    metadata: MetadataMapping = MetadataMapping()
    description: str | None = None
    embedded_vectors: tuple[EmbeddedVector, ...] = ()   # what readers see: the live version's vectors
    desired_vectors: tuple[EmbeddedVector, ...] = ()    # what the mapping file asks for now
    versions: tuple[CollectionVersion, ...] = ()        # every written version; () = one plain collection
    vector_lengths: tuple[tuple[str, int], ...] = ()    # (vector column, dimensions): declared or inferred

    @property
    def vector_columns(self) -> tuple[str, ...]:
        """The BLOB columns this table's vectors are read from (unnamed, then named)."""
        return ((self.vector_column,) if self.vector_column else ()) + tuple(c for _, c in self.named_vectors)

    def vector_length(self, column: str) -> int | None:
        """The dimensions every vector of ``column`` must have (None: not known, not checked)."""
        return next((n for name, n in self.vector_lengths if name == column), None)

    def decode_vector(self, row: RowMapping[str, Any], column: str) -> list[float] | None:
        """The vector of ``column`` in ``row``, refused (ValueConversionError) unless it is a
        float32 array of the column's length."""
        return convert.decode_vector(self._get(row, column), self.vector_length(column))

    @property
    def versioned(self) -> bool:
        """``collection`` is an alias over ``<collection>_<version>`` collections (embedder vectors)."""
        return bool(self.versions)

    def version_collection(self, version: str) -> str:
        return f"{self.collection}_{version}"

    def version(self, name: str) -> CollectionVersion:
        for version in self.versions:
            if version.name == name:
                return version
        raise MappingError(f"table {self.table!r} has no collection version {name!r}; versions: "
                           f"{[v.name for v in self.versions] or 'none'}")

    @property
    def live_version(self) -> CollectionVersion | None:
        return next((v for v in self.versions if v.state == "live"), None)

    @property
    def write_collections(self) -> tuple[str, ...]:
        """Every physical collection a change of this table is written to."""
        if not self.versions:
            return (self.collection,)
        return tuple(self.version_collection(v.name) for v in self.versions)

    def for_version(self, name: str) -> "TableMapping":
        """A plain mapping of one version's physical collection (verify it, create it, search it)."""
        version = self.version(name)
        return dataclasses.replace(self, collection=self.version_collection(name), embedded_vectors=version.vectors,
                                   versions=())

    @functools.cached_property
    def source_columns(self) -> tuple[str, ...]:
        """Every column the SELECT must read: PK, mapped, vector, tenant, reference columns.

        Computed once per instance (the dataclass is frozen, so it cannot go stale).
        """
        ordered: dict[str, None] = {}
        for name in self.primary_key:
            ordered[name] = None
        for column in self.columns:
            ordered[column.column] = None
        if self.vector_column:
            ordered[self.vector_column] = None
        for _, column_name in self.named_vectors:
            ordered[column_name] = None
        if self.tenant_column:
            ordered[self.tenant_column] = None
        for reference in self.references:
            ordered[reference.column] = None
        return tuple(ordered)

    def column(self, name: str) -> ColumnMapping:
        for column in self.columns:
            if column.column == name:
                return column
        raise MappingError(f"column {name!r} of table {self.table!r} is not mapped")

    def select_sql(self) -> str:
        columns = ", ".join(quote_identifier(c) for c in self.source_columns)
        return f"SELECT {columns} FROM {quote_identifier(self.table)}"

    def key_of(self, row: RowMapping[str, Any]) -> tuple[Any, ...]:
        try:
            return tuple(row[name] for name in self.primary_key)
        except KeyError as exc:
            raise MappingError(f"row of table {self.table!r} lacks primary-key column {exc.args[0]!r}") from None

    def uuid_for_key(self, pk_values: tuple[Any, ...]) -> uuid.UUID:
        return object_uuid(self.table, tuple(pk_values))

    def uuid_bytes_for_key(self, pk_values: tuple[Any, ...]) -> bytes:
        """``uuid_for_key(...).bytes`` without the ``UUID`` object (verify stages millions)."""
        return object_uuid_bytes(self.table, tuple(pk_values))

    def with_collection(self, name: str) -> "TableMapping":
        """The same mapping writing to another collection (tests, blue/green)."""
        from .naming import validate_collection_name

        return dataclasses.replace(self, collection=validate_collection_name(name, f"table {self.table!r}"))

    def to_object(self, row: RowMapping[str, Any], *, now: datetime | None = None,
                  object_id: uuid.UUID | None = None) -> WeaviateObject:
        """Convert one row (column -> sqlite3 value) to its object.

        Raises ConversionError naming table, key, column and reason for a value that
        cannot be represented exactly; MappingError if the row lacks a needed column.
        ``now`` fixes the migration timestamp (defaults to the current UTC time).
        ``object_id`` is ``uuid_for_key`` of the row's key when the caller already has
        it (the relay computed it to choose the partition); it is not computed again.
        """
        pk = self.key_of(row)
        try:
            object_id = object_id if object_id is not None else self.uuid_for_key(pk)
        except MappingError as exc:
            # SQLite lets NULL into non-INTEGER primary keys of rowid tables unless the
            # column is NOT NULL: a per-row problem for the dead-letter table, not a crash.
            raise ConversionError(self.table, pk, ",".join(self.primary_key), str(exc), kind=NULL_KEY) from None
        properties: dict[str, Any] = {}
        for column in self.columns:
            try:
                value = column.convert(self._get(row, column.column))
            except ValueConversionError as exc:
                raise ConversionError(self.table, pk, column.column, str(exc), exc.kind, exc.fix) from None
            if value is not None:
                properties[column.property] = value
        self._add_metadata(properties, pk, now)
        properties[HASH_PROPERTY] = _content_hash(self, row)
        return WeaviateObject(
            uuid=object_id,
            collection=self.collection,
            properties=properties,
            vector=self._vector(row, pk),
            references=self._references(row),
            tenant=self._tenant(row, pk),
            content_hash=properties[HASH_PROPERTY],
            embed={v.name: v.spec() for v in self.embedded_vectors},
        )

    def to_objects(self, row: RowMapping[str, Any], *, now: datetime | None = None,
                   object_id: uuid.UUID | None = None) -> list[WeaviateObject]:
        """The row's object for every collection it is written to (one per version, or one).

        Raises what :meth:`to_object` raises; a version whose embedder id is not recorded
        yet is a MappingError (run ``init``).
        """
        obj = self.to_object(row, now=now, object_id=object_id)
        if not self.versions:
            return [obj]
        objects = []
        for version in self.versions:
            missing = [v.name for v in version.vectors if not v.embedder_id]
            if missing:
                raise MappingError(f"table {self.table!r}: collection version {version.name} has no recorded "
                                   f"embedder for vector(s) {missing}; run `sqlite-to-weaviate init`")
            objects.append(dataclasses.replace(obj, collection=self.version_collection(version.name),
                                               properties=dict(obj.properties),
                                               embed={v.name: v.spec() for v in version.vectors}))
        return objects

    def _get(self, row: RowMapping[str, Any], column: str) -> Any:
        try:
            return row[column]
        except KeyError:
            raise MappingError(
                f"row of table {self.table!r} lacks column {column!r}; select it with select_sql()"
            ) from None

    def _add_metadata(self, properties: dict[str, Any], pk: tuple[Any, ...], now: datetime | None) -> None:
        if self.metadata.is_empty():
            return
        values: dict[str, Any] = {}
        for name, value in self.metadata.constants:
            values[name] = value
        if self.metadata.original_id:
            values[self.metadata.original_id] = key_text(pk)
        if self.metadata.migration_timestamp:
            moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
            values[self.metadata.migration_timestamp] = convert._format_utc(moment, f"{moment.microsecond:06d}")
        if self.metadata.property:
            properties[self.metadata.property] = values
        else:
            properties.update(values)

    def _vector(self, row: RowMapping[str, Any], pk: tuple[Any, ...]) -> list[float] | dict[str, list[float]] | None:
        try:
            if self.named_vectors:
                vectors = {}
                for name, column_name in self.named_vectors:
                    column = column_name
                    decoded = self.decode_vector(row, column_name)
                    if decoded is not None:
                        vectors[name] = decoded
                return vectors or None
            if self.vector_column:
                column = self.vector_column
                return self.decode_vector(row, column)
        except ValueConversionError as exc:
            raise ConversionError(self.table, pk, column, str(exc), exc.kind, exc.fix) from None
        return None

    def _references(self, row: RowMapping[str, Any]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for reference in self.references:
            value = self._get(row, reference.column)
            if value is not None:
                result[reference.property] = [str(reference.target_uuid(value))]
        return result

    def _tenant(self, row: RowMapping[str, Any], pk: tuple[Any, ...]) -> str | None:
        if not self.tenant_column:
            return None
        value = self._get(row, self.tenant_column)
        if value is None:
            raise ConversionError(self.table, pk, self.tenant_column, "tenant column is NULL; every object needs a tenant",
                                  kind=BAD_TENANT)
        try:
            tenant = convert.to_text(value)
        except ValueConversionError as exc:
            raise ConversionError(self.table, pk, self.tenant_column, str(exc), kind=BAD_TENANT) from None
        if not _TENANT_NAME.fullmatch(tenant):
            raise ConversionError(
                self.table, pk, self.tenant_column,
                f"tenant {tenant!r} is not a valid Weaviate tenant name (1-64 of A-Z a-z 0-9 _ -)", kind=BAD_TENANT,
            )
        return tenant


@dataclass(frozen=True)
class Mapping:
    """The whole database: mapped tables by SQLite name, and why others were skipped.

    ``embedders`` and ``embedding_cache`` are the mapping file's ``[embedders.*]`` and
    ``[embedding_cache]`` (``sqlite_to_weaviate.embed.config``).
    """

    tables: dict[str, TableMapping]
    skipped: dict[str, str] = field(default_factory=dict)
    embedders: dict[str, Any] = field(default_factory=dict)
    embedding_cache: Any = None

    def write_collections(self) -> tuple[str, ...]:
        """Every physical collection the pipeline writes (the signed allow-list of each job)."""
        return tuple(sorted({name for t in self.tables.values() for name in t.write_collections}))

    @property
    def uses_embedders(self) -> bool:
        return any(t.embedded_vectors or t.versions for t in self.tables.values())

    def table(self, name: str) -> TableMapping:
        try:
            return self.tables[name]
        except KeyError:
            reason = self.skipped.get(name)
            detail = f" (skipped: {reason})" if reason else f"; mapped tables: {sorted(self.tables)}"
            raise MappingError(f"table {name!r} is not mapped{detail}") from None

    def by_collection(self, name: str) -> TableMapping:
        for table_mapping in self.tables.values():
            if table_mapping.collection == name:
                return table_mapping
        raise MappingError(f"no table maps to collection {name!r}; collections: {sorted(t.collection for t in self.tables.values())}")

    def collections_in_order(self) -> list[TableMapping]:
        """Tables sorted so reference targets come before the tables pointing at them."""
        ordered: list[TableMapping] = []
        seen: set[str] = set()

        def visit(tm: TableMapping, stack: tuple[str, ...]) -> None:
            if tm.table in seen or tm.table in stack:
                return
            for reference in tm.references:
                target = self.tables.get(reference.target_table)
                if target is not None:
                    visit(target, stack + (tm.table,))
            seen.add(tm.table)
            ordered.append(tm)

        for tm in self.tables.values():
            visit(tm, ())
        return ordered
