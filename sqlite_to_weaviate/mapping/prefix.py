"""A whole mapping with every collection name prefixed (tests, blue/green, several apps in one Weaviate).

Reference targets are prefixed too, so the prefixed mapping is self-consistent and every
component (relay, verifier, schema creation) can use it without knowing about prefixes.
"""

from __future__ import annotations

import dataclasses

from .model import Mapping
from .naming import validate_collection_name


def with_prefix(mapping: Mapping, prefix: str) -> Mapping:
    if not prefix:
        return mapping
    tables = {}
    for name, table in mapping.tables.items():
        collection = validate_collection_name(prefix + table.collection, f"table {name!r} with prefix {prefix!r}")
        references = tuple(
            dataclasses.replace(r, target_collection=prefix + r.target_collection) for r in table.references
        )
        tables[name] = dataclasses.replace(table, collection=collection, references=references)
    return dataclasses.replace(mapping, tables=tables)
