"""Write a :class:`MappingConfig` back as TOML, with comments, so a generated mapping reads like a hand-written one.

``suggest-mapping`` starts from the user's own mapping file (if any) and adds what the data
asks for; re-parsing the output gives back exactly the config that was rendered
(``parse_mapping_config(render_mapping_config(c)) == c`` up to ``source``), which the unit
tests check. Comments are attached to a section path, e.g. ``("tables", "messages",
"columns", "sent_at")``, and printed above that section's header; ``trailing`` comments
are printed after its keys (commented-out settings belong there, so that uncommenting
them puts them in the right section).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable
from typing import Any

from sqlite_to_weaviate.embed.config import CacheSpec, EmbedderSpec

from .config_file import ColumnConfig, MappingConfig, TableConfig
from .model import MetadataMapping

Comments = dict[tuple[str, ...], list[str]]


def toml_key(name: str) -> str:
    """A bare TOML key when possible, else a quoted one."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_value(name)


def toml_value(value: Any) -> str:
    """A TOML literal for the scalar and list values a mapping config holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"cannot write {value!r} to TOML")


def _comment_lines(lines: Iterable[str]) -> list[str]:
    """Prose is wrapped at 100 columns; lines that already start with '#' (commented-out TOML) are kept."""
    out = []
    for line in lines:
        if line.startswith("#"):
            out.append(line)
        elif not line:
            out.append("#")
        else:
            out.extend(f"# {part}" for part in textwrap.wrap(line, width=98, break_on_hyphens=False))
    return out


def _section(out: list[str], header: str, path: tuple[str, ...], pairs: list[tuple[str, Any]],
             comments: Comments, trailing: Comments | None = None) -> None:
    out.append("")
    out.extend(_comment_lines(comments.get(path, [])))
    out.append(header)
    out.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in pairs)
    out.extend(_comment_lines((trailing or {}).get(path, [])))


def _metadata_pairs(metadata: MetadataMapping) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    if metadata.property:
        pairs.append(("property", metadata.property))
    if metadata.constants:
        pairs.append(("constants", dict(metadata.constants)))
    if metadata.original_id:
        pairs.append(("original_id", metadata.original_id))
    if metadata.migration_timestamp:
        pairs.append(("migration_timestamp", metadata.migration_timestamp))
    return pairs


def _column_pairs(column: ColumnConfig) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    if column.property is not None:
        pairs.append(("property", column.property))
    if column.json_as is not None:
        pairs.append(("json_as", column.json_as))   # the parser folds json_as into type
    elif column.type is not None:
        pairs.append(("type", column.type.value))
    for key in ("vectorize", "filterable", "searchable", "date_unit", "naive_timezone", "default"):
        value = getattr(column, key)
        if value is not None:
            pairs.append((key, value))
    if column.nested:
        pairs.append(("nested", {name: data_type.value for name, data_type in column.nested}))
    if column.exclude:
        pairs.append(("exclude", True))
    if column.description is not None:
        pairs.append(("description", column.description))
    return pairs


def _table(out: list[str], name: str, table: TableConfig, comments: Comments, trailing: Comments) -> None:
    base = ("tables", name)
    prefix = f"tables.{toml_key(name)}"
    pairs: list[tuple[str, Any]] = []
    for key in ("collection", "description"):
        if getattr(table, key) is not None:
            pairs.append((key, getattr(table, key)))
    if table.exclude_columns:
        pairs.append(("exclude_columns", list(table.exclude_columns)))
    dimensions = dict(table.vector_dimensions)
    for key in ("vectorizer", "vector_column", "tenant_column"):
        if getattr(table, key) is not None:
            pairs.append((key, getattr(table, key)))
        if key == "vector_column" and table.vector_column in dimensions:
            pairs.append(("vector_dimensions", dimensions[table.vector_column]))
    has_subsections = bool(table.columns or table.vectors or table.embedded_vectors or table.references
                           or table.metadata is not None)
    if pairs or comments.get(base) or trailing.get(base) or not has_subsections:
        _section(out, f"[{prefix}]", base, pairs, comments, trailing)   # else the sub-sections define it
    if table.metadata is not None:
        _section(out, f"[{prefix}.metadata]", base + ("metadata",), _metadata_pairs(table.metadata), comments)
    for column_name, column in table.columns.items():
        _section(out, f"[{prefix}.columns.{toml_key(column_name)}]", base + ("columns", column_name),
                 _column_pairs(column), comments, trailing)
    for vector_name, column_name in table.vectors:
        _section(out, f"[{prefix}.vectors.{toml_key(vector_name)}]", base + ("vectors", vector_name),
                 [("column", column_name)] + ([("dimensions", dimensions[column_name])]
                                              if column_name in dimensions else []), comments)
    for vector in table.embedded_vectors:
        vector_pairs: list[tuple[str, Any]] = [("embedder", vector.embedder)]
        if vector.source_columns is not None:
            vector_pairs.append(("source_columns", list(vector.source_columns)))
        _section(out, f"[{prefix}.vectors.{toml_key(vector.name)}]", base + ("vectors", vector.name),
                 vector_pairs, comments)
    for reference in table.references:
        _section(out, f"[[{prefix}.references]]", base + ("references", reference.column),
                 [("column", reference.column), ("property", reference.property), ("target", reference.target)],
                 comments)


def render_mapping_config(config: MappingConfig, *, comments: Comments | None = None,
                          trailing: Comments | None = None, header: Iterable[str] = ()) -> str:
    """TOML text for ``config``; ``comments`` above and ``trailing`` below sections by path, ``header`` at the top."""
    comments = comments or {}
    trailing = trailing or {}
    out = _comment_lines(header)
    top: list[tuple[str, Any]] = []
    if config.include is not None:
        top.append(("include", list(config.include)))
    if config.exclude:
        top.append(("exclude", list(config.exclude)))
    if config.vectorizer is not None:
        top.append(("vectorizer", config.vectorizer))
    if config.naive_timezone != "UTC":
        top.append(("naive_timezone", config.naive_timezone))
    if top:
        out.append("")
        out.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in top)
    if config.metadata != MetadataMapping():
        _section(out, "[metadata]", ("metadata",), _metadata_pairs(config.metadata), comments)
    for name, spec in config.embedders.items():
        _section(out, f"[embedders.{toml_key(name)}]", ("embedders", name), _embedder_pairs(spec), comments)
    if config.embedding_cache != CacheSpec():
        cache = config.embedding_cache
        cache_pairs: list[tuple[str, Any]] = [("collection", cache.collection), ("max_entries", cache.max_entries)]
        if cache.max_age_days is not None:
            cache_pairs.append(("max_age_days", cache.max_age_days))
        _section(out, "[embedding_cache]", ("embedding_cache",), cache_pairs, comments)
    for name, table in config.tables.items():
        _table(out, name, table, comments, trailing)
    return "\n".join(out).lstrip("\n") + "\n"


def _embedder_pairs(spec: EmbedderSpec) -> list[tuple[str, Any]]:
    """Every key the spec's kind takes, with its value (None values are left out)."""
    from sqlite_to_weaviate.embed.config import KIND_KEYS

    pairs: list[tuple[str, Any]] = [("kind", spec.kind)]
    for key in KIND_KEYS[spec.kind]:
        if key == "kind":
            continue
        value = getattr(spec, key)
        if value is not None:
            pairs.append((key, value))
    return pairs
