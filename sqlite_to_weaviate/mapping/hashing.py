"""Content hash of a source row, stored on every object for the verifier.

The hash is over the SQLite values (not the converted object), in ``source_columns``
order, tagged by storage class, so it is stable across processes, hosts and Python
versions and independent of conversion details such as date formatting::

    payload = json.dumps(["s2w-content-v1", table, [[column, encoded_value], ...]],
                         separators=(",", ":"), ensure_ascii=False)
    content_hash = sha256(payload.encode("utf-8")).hexdigest()

``encoded_value`` is the key encoding of :mod:`.identity` (int -> int, str -> str,
float -> {"f": repr}, bytes -> {"b": base64}) and NULL -> JSON null.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping as RowMapping
from typing import Any, Protocol

from .errors import MappingError
from .identity import compact_json_bytes, encode_value_fast



class HashedTable(Protocol):
    """What the hash needs of a table mapping (``model.TableMapping`` is one)."""

    @property
    def table(self) -> str: ...

    @property
    def source_columns(self) -> tuple[str, ...]: ...

HASH_VERSION = "s2w-content-v1"


def hash_values(table: str, columns: tuple[str, ...], row: RowMapping[str, Any]) -> str:
    """sha256 hex of the canonical serialization of ``row`` restricted to ``columns``."""
    items = []
    for column in columns:
        try:
            value = row[column]
        except KeyError:
            raise MappingError(f"row of table {table!r} lacks column {column!r} needed for the content hash") from None
        kind = type(value)  # inlined encode_value_fast: this loop runs for every value verify reads
        items.append([column, value if kind is int or kind is str or value is None else encode_value_fast(value)])
    try:
        payload = compact_json_bytes([HASH_VERSION, table, items])
    except UnicodeEncodeError as exc:
        raise MappingError(f"row of table {table!r} holds text that is not valid Unicode (lone surrogate)") from exc
    return hashlib.sha256(payload).hexdigest()


def content_hash(table_mapping: HashedTable, row: RowMapping[str, Any]) -> str:
    """Hash of the row's ``source_columns`` values (see module docstring for the formula)."""
    return hash_values(table_mapping.table, table_mapping.source_columns, row)
