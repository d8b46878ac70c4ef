"""The mapping config file (TOML): explicit overrides of the reflected defaults.

Parsing is strict: an unknown key, a wrong value type or an invalid name is a
MappingError naming the file, the key path (``tables.messages.columns.body.tpye``), the
line when it can be found, and the fix (valid keys, closest match). Whether the tables
and columns exist is checked later, against the live schema, by :mod:`.reflect`.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.embed.config import CacheSpec, EmbedderSpec, parse_cache, parse_embedders
from sqlite_to_weaviate.embed.text import DIGEST_PREFIX

from .convert import resolve_timezone
from .errors import MappingError
from .model import MetadataMapping, constant_type
from .naming import MAX_VECTOR_NAME, VECTOR_NAME, validate_collection_name, validate_property_name
from .types import DataType

_SCALAR_NESTED_TYPES = ("text", "int", "number", "boolean", "date")


@dataclass(frozen=True)
class ColumnConfig:
    property: str | None = None
    type: DataType | None = None
    vectorize: bool | None = None
    filterable: bool | None = None
    searchable: bool | None = None
    json_as: str | None = None
    date_unit: str | None = None
    naive_timezone: str | None = None
    default: Any = None
    nested: tuple[tuple[str, DataType], ...] = ()
    exclude: bool = False
    description: str | None = None


@dataclass(frozen=True)
class ReferenceConfig:
    column: str
    property: str
    target: str


@dataclass(frozen=True)
class EmbeddedVectorConfig:
    """``[tables.T.vectors.NAME] embedder = "..."``: a named vector computed by the workers."""

    name: str
    embedder: str
    source_columns: tuple[str, ...] | None = None  # default: the columns with vectorize = true


@dataclass(frozen=True)
class TableConfig:
    collection: str | None = None
    description: str | None = None
    exclude_columns: tuple[str, ...] = ()
    columns: dict[str, ColumnConfig] = field(default_factory=dict)
    vectorizer: str | None = None
    vector_column: str | None = None
    vectors: tuple[tuple[str, str], ...] = ()
    embedded_vectors: tuple[EmbeddedVectorConfig, ...] = ()
    references: tuple[ReferenceConfig, ...] = ()
    tenant_column: str | None = None
    metadata: MetadataMapping | None = None
    vector_dimensions: tuple[tuple[str, int], ...] = ()  # (vector column, dimensions) declared


@dataclass(frozen=True)
class MappingConfig:
    """Parsed config. ``vectorizer`` "none" is stored as None (no vectorizer)."""

    source: str = "<defaults>"
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    vectorizer: str | None = None
    naive_timezone: str = "UTC"
    metadata: MetadataMapping = MetadataMapping()
    tables: dict[str, TableConfig] = field(default_factory=dict)
    embedders: dict[str, EmbedderSpec] = field(default_factory=dict)
    embedding_cache: CacheSpec = CacheSpec()


class _Reader:
    """Walks the parsed TOML with the file name and text at hand for error messages."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text

    def fail(self, path: str, problem: str, fix: str = "") -> MappingError:
        line = self._line_of(path)
        where = f"{self.source}{f':{line}' if line else ''}: {path}" if path else self.source
        return MappingError(f"{where}: {problem}" + (f" — {fix}" if fix else ""))

    def _line_of(self, path: str) -> int | None:
        key = path.rsplit(".", 1)[-1].strip('"')
        if not key or key.endswith("]"):
            return None
        pattern = re.compile(r'^\s*(?:\[+[^\]]*\b|"?)' + re.escape(key) + r'"?\s*(?:=|\]|\.)')
        for number, line in enumerate(self.text.splitlines(), 1):
            if pattern.search(line):
                return number
        return None

    def table(self, value: Any, path: str, allowed: dict[str, str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(f"{path}.{key}" if path else key, "unknown key",
                                f"{hint}valid keys: {', '.join(sorted(allowed))}")
        return value

    def get(self, data: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        if key not in data:
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if bool not in kinds and isinstance(value, bool) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(_join(path, key), f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def strings(self, data: dict[str, Any], key: str, path: str) -> tuple[str, ...] | None:
        value = self.get(data, key, path, list)
        if value is None:
            return None
        if not all(isinstance(v, str) for v in value):
            raise self.fail(_join(path, key), "expected a list of strings")
        return tuple(value)

    def choice(self, data: dict[str, Any], key: str, path: str, choices: tuple[str, ...]) -> str | None:
        value = self.get(data, key, path, str)
        if value is not None and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            raise self.fail(_join(path, key), f"invalid value {value!r}",
                            (f"did you mean {close[0]!r}? " if close else "") + f"valid values: {', '.join(choices)}")
        return value

    def name(self, check: Any, value: str | None, path: str, what: str) -> str | None:
        if value is None:
            return None
        try:
            return check(value, what)
        except MappingError as exc:
            raise self.fail(path, str(exc)) from None

    def timezone(self, data: dict[str, Any], key: str, path: str) -> str | None:
        value = self.get(data, key, path, str)
        if value is not None:
            try:
                resolve_timezone(value)
            except MappingError as exc:
                raise self.fail(_join(path, key), str(exc)) from None
        return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_TOP_KEYS = {"include": "tables to map", "exclude": "tables to skip", "vectorizer": "module or none",
             "naive_timezone": "zone of naive dates", "metadata": "extra properties", "tables": "per-table settings",
             "embedders": "models that compute vectors", "embedding_cache": "where computed vectors are kept"}
_TABLE_KEYS = {k: "" for k in ("collection", "description", "exclude_columns", "columns", "vectorizer", "vector_column",
                               "vector_dimensions", "vectors", "references", "tenant_column", "metadata")}
MAX_DIMENSIONS = 65_536

_COLUMN_KEYS = {k: "" for k in ("property", "type", "vectorize", "filterable", "searchable", "json_as",
                                "date_unit", "naive_timezone", "default", "nested", "exclude", "description")}
_REFERENCE_KEYS = {"column": "", "property": "", "target": ""}
_METADATA_KEYS = {"constants": "", "original_id": "", "migration_timestamp": "", "property": ""}


def _vectorizer(reader: _Reader, data: dict[str, Any], path: str) -> str | None:
    value = reader.get(data, "vectorizer", path, str)
    if value is not None and not re.fullmatch(r"none|[a-z0-9]+(?:[-_][a-z0-9]+)*", value):
        raise reader.fail(_join(path, "vectorizer"), f"invalid vectorizer {value!r}",
                          "use \"none\" or a module name like \"text2vec-transformers\"")
    return value


def _metadata(reader: _Reader, value: Any, path: str) -> MetadataMapping:
    data = reader.table(value, path, _METADATA_KEYS)
    constants_raw = reader.get(data, "constants", path, dict, {})
    constants = []
    for name, constant in constants_raw.items():
        key_path = f"{path}.constants.{name}"
        reader.name(validate_property_name, name, key_path, "a metadata constant")
        try:
            data_type = constant_type(constant)
        except MappingError as exc:
            raise reader.fail(key_path, str(exc)) from None
        if data_type is DataType.INT and abs(constant) > 2**53:
            raise reader.fail(key_path, "integer beyond +-2^53", "write it as a string")
        constants.append((name, constant))
    original_id = reader.get(data, "original_id", path, str)
    timestamp = reader.get(data, "migration_timestamp", path, str)
    nest = reader.get(data, "property", path, str)
    for key, name in (("original_id", original_id), ("migration_timestamp", timestamp), ("property", nest)):
        reader.name(validate_property_name, name, _join(path, key), "a metadata property")
    names = [n for n, _ in constants] + [n for n in (original_id, timestamp) if n]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise reader.fail(path, f"metadata property names used twice: {sorted(duplicates)}")
    return MetadataMapping(constants=tuple(constants), original_id=original_id, migration_timestamp=timestamp,
                           property=nest)


def _column(reader: _Reader, value: Any, path: str) -> ColumnConfig:
    data = reader.table(value, path, _COLUMN_KEYS)
    type_name = reader.choice(data, "type", path, tuple(DataType.names()))
    json_as = reader.choice(data, "json_as", path, ("text", "object"))
    data_type = DataType(type_name) if type_name else None
    if json_as and data_type not in (None, DataType(json_as)):
        raise reader.fail(_join(path, "json_as"), f"json_as = {json_as!r} contradicts type = {type_name!r}",
                          "keep one of them")
    nested_raw = reader.get(data, "nested", path, dict, {})
    nested = []
    for name, nested_type in nested_raw.items():
        key_path = f"{path}.nested.{name}"
        reader.name(validate_property_name, name, key_path, "a nested property")
        if nested_type not in _SCALAR_NESTED_TYPES:
            raise reader.fail(key_path, f"invalid nested type {nested_type!r}",
                              f"valid values: {', '.join(_SCALAR_NESTED_TYPES)}")
        nested.append((name, DataType(nested_type)))
    effective = data_type or (DataType(json_as) if json_as else None)
    if effective is DataType.OBJECT and not nested:
        raise reader.fail(path, "an object column needs its nested properties",
                          'add nested = { key = "text", ... } listing the JSON keys, or use type = "text"')
    if nested and effective is not DataType.OBJECT:
        raise reader.fail(_join(path, "nested"), "nested properties only apply to type = \"object\"")
    default = data.get("default")
    if default is not None and not isinstance(default, (str, int, float, bool)):
        raise reader.fail(_join(path, "default"), f"default must be a string, number or boolean, got {default!r}")
    return ColumnConfig(
        property=reader.name(validate_property_name, reader.get(data, "property", path, str),
                             _join(path, "property"), path),
        type=effective,
        vectorize=reader.get(data, "vectorize", path, bool),
        filterable=reader.get(data, "filterable", path, bool),
        searchable=reader.get(data, "searchable", path, bool),
        json_as=json_as,
        date_unit=reader.choice(data, "date_unit", path, ("s", "ms")),
        naive_timezone=reader.timezone(data, "naive_timezone", path),
        default=default,
        nested=tuple(nested),
        exclude=reader.get(data, "exclude", path, bool, False),
        description=reader.get(data, "description", path, str),
    )


def _dimensions(reader: _Reader, data: dict[str, Any], key: str, path: str) -> int | None:
    """A declared vector length: a whole number of dimensions."""
    value = reader.get(data, key, path, int)
    if value is not None and not 1 <= value <= MAX_DIMENSIONS:
        raise reader.fail(_join(path, key), f"{value} dimensions", f"a vector has 1 to {MAX_DIMENSIONS} dimensions")
    return value


def _table(reader: _Reader, value: Any, path: str) -> TableConfig:
    data = reader.table(value, path, _TABLE_KEYS)
    columns = {name: _column(reader, col, f"{path}.columns.{name}")
               for name, col in reader.get(data, "columns", path, dict, {}).items()}
    vectors = []
    embedded = []
    dimensions: list[tuple[str, int]] = []
    for name, vec in reader.get(data, "vectors", path, dict, {}).items():
        vec_path = f"{path}.vectors.{name}"
        if not VECTOR_NAME.fullmatch(name):
            raise reader.fail(vec_path, f"invalid vector name {name!r}",
                              f"use letters, digits and _, at most {MAX_VECTOR_NAME} characters")
        vec_data = reader.table(vec, vec_path, {"column": "", "embedder": "", "source_columns": "",
                                                "dimensions": ""})
        column = reader.get(vec_data, "column", vec_path, str)
        embedder = reader.get(vec_data, "embedder", vec_path, str)
        if (column is None) == (embedder is None):
            raise reader.fail(vec_path, "set exactly one of 'column' and 'embedder'",
                              "column = the BLOB column holding a float32 vector, or embedder = the name of an "
                              "[embedders.*] block that computes the vector from the columns with vectorize = true")
        if column is not None:
            if "source_columns" in vec_data:
                raise reader.fail(f"{vec_path}.source_columns", "source_columns only applies to embedder vectors")
            vectors.append((name, column))
            declared = _dimensions(reader, vec_data, "dimensions", vec_path)
            if declared is not None:
                dimensions.append((column, declared))
            continue
        if "dimensions" in vec_data:
            raise reader.fail(f"{vec_path}.dimensions", "dimensions applies to vectors read from a column",
                              "an embedder's vectors have the length its model gives")
        if len(DIGEST_PREFIX + name) > 231:  # its fingerprint property s2wVec_<name> must be a valid property name
            raise reader.fail(vec_path, f"vector name {name!r} is too long for an embedder vector",
                              f"at most {231 - len(DIGEST_PREFIX)} characters")
        sources = reader.strings(vec_data, "source_columns", vec_path)
        if sources is not None and not sources:
            raise reader.fail(f"{vec_path}.source_columns", "must name at least one column")
        embedded.append(EmbeddedVectorConfig(name=name, embedder=embedder, source_columns=sources))
    references = []
    for index, ref in enumerate(reader.get(data, "references", path, list, [])):
        ref_path = f"{path}.references[{index}]"
        ref_data = reader.table(ref, ref_path, _REFERENCE_KEYS)
        missing = [k for k in _REFERENCE_KEYS if k not in ref_data]
        if missing:
            raise reader.fail(ref_path, f"missing keys {missing}", "a reference needs column, property and target")
        prop = reader.get(ref_data, "property", ref_path, str)
        reader.name(validate_property_name, prop, _join(ref_path, "property"), "a reference")
        references.append(ReferenceConfig(column=reader.get(ref_data, "column", ref_path, str), property=prop,
                                          target=reader.get(ref_data, "target", ref_path, str)))
    vector_column = reader.get(data, "vector_column", path, str)
    if vector_column and embedded:
        raise reader.fail(path, "vector_column cannot be combined with embedder vectors",
                          "give the BLOB column a name too: [vectors.<name>] column = \"...\"")
    if vector_column and vectors:
        raise reader.fail(path, "both vector_column and vectors are set",
                          "use vector_column for one unnamed vector or [vectors.<name>] for named vectors")
    declared = _dimensions(reader, data, "vector_dimensions", path)
    if declared is not None:
        if not vector_column:
            raise reader.fail(_join(path, "vector_dimensions"), "vector_dimensions without vector_column",
                              "set vector_column, or dimensions = N in [vectors.<name>] for a named vector")
        dimensions.append((vector_column, declared))
    metadata = _metadata(reader, data["metadata"], f"{path}.metadata") if "metadata" in data else None
    return TableConfig(
        collection=reader.name(validate_collection_name, reader.get(data, "collection", path, str),
                               _join(path, "collection"), path),
        description=reader.get(data, "description", path, str),
        exclude_columns=reader.strings(data, "exclude_columns", path) or (),
        columns=columns,
        vectorizer=_vectorizer(reader, data, path),
        vector_column=vector_column,
        vectors=tuple(vectors),
        embedded_vectors=tuple(embedded),
        references=tuple(references),
        tenant_column=reader.get(data, "tenant_column", path, str),
        metadata=metadata,
        vector_dimensions=tuple(dimensions),
    )


def parse_mapping_config(text: str, source: str = "<string>") -> MappingConfig:
    """Parse config TOML text; ``source`` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{source}: invalid TOML: {exc}") from None
    reader = _Reader(source, text)
    reader.table(data, "", _TOP_KEYS)
    vectorizer = _vectorizer(reader, data, "")
    embedders = parse_embedders(reader, data["embedders"]) if "embedders" in data else {}
    tables = {name: _table(reader, table, f"tables.{_quote(name)}")
              for name, table in reader.get(data, "tables", "", dict, {}).items()}
    for name, table in tables.items():
        for vector in table.embedded_vectors:
            if vector.embedder not in embedders:
                close = difflib.get_close_matches(vector.embedder, list(embedders), n=1)
                raise reader.fail(f"tables.{_quote(name)}.vectors.{vector.name}.embedder",
                                  f"no embedder named {vector.embedder!r}",
                                  (f"did you mean {close[0]!r}? " if close else "")
                                  + (f"defined: {', '.join(sorted(embedders))}" if embedders
                                     else "define it in an [embedders.<name>] block"))
    return MappingConfig(
        source=source,
        include=reader.strings(data, "include", ""),
        exclude=reader.strings(data, "exclude", "") or (),
        vectorizer=None if vectorizer in (None, "none") else vectorizer,
        naive_timezone=reader.timezone(data, "naive_timezone", "") or "UTC",
        metadata=_metadata(reader, data["metadata"], "metadata") if "metadata" in data else MetadataMapping(),
        tables=tables,
        embedders=embedders,
        embedding_cache=parse_cache(reader, data["embedding_cache"]) if "embedding_cache" in data else CacheSpec(),
    )


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else '"' + name.replace('"', '\\"') + '"'


def load_mapping_config(path: str | Path) -> MappingConfig:
    """Read and validate a mapping config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{file}: cannot read mapping config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise MappingError(f"{file}: mapping config is not UTF-8: {exc}") from None
    return parse_mapping_config(text, str(file))
