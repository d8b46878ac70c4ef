"""A whole mapping with every collection name prefixed (tests, blue/green, several apps in one Weaviate).

Reference targets are prefixed too, so the prefixed mapping is self-consistent and every
component (relay, verifier, schema creation) can use it without knowing about prefixes.
"""

from __future__ import annotations

import dataclasses

from .errors import MappingError
from .model import Mapping
from .naming import MAX_COLLECTION_NAME, toml_key, validate_collection_name


def with_prefix(mapping: Mapping, prefix: str) -> Mapping:
    if not prefix:
        return mapping
    tables = {}
    for name, table in mapping.tables.items():
        if len(prefix) + len(table.collection) > MAX_COLLECTION_NAME:
            raise MappingError(
                f"collection name of table {name!r} with prefix {prefix!r} would be "
                f"{len(prefix) + len(table.collection)} characters; Weaviate allows at most {MAX_COLLECTION_NAME}: "
                f"set a shorter one in the mapping config ([tables.{toml_key(name)}] collection = \"...\") "
                "or use a shorter collection prefix"
            )
        collection = validate_collection_name(prefix + table.collection, f"table {name!r} with prefix {prefix!r}")
        references = tuple(
            dataclasses.replace(r, target_collection=prefix + r.target_collection) for r in table.references
        )
        tables[name] = dataclasses.replace(table, collection=collection, references=references)
    return dataclasses.replace(mapping, tables=tables)
