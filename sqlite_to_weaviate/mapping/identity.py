"""Deterministic object identity: one UUID per (table, primary-key values).

Idempotent replays need the same row to land on the same Weaviate object every time,
on every host, in every Python version. ``weaviate.util.generate_uuid5`` concatenates
namespace and identifier without a separator, so the key is encoded here as an
unambiguous, type-aware JSON array instead::

    canonical_key("messages", (42,))      == '["messages",42]'
    canonical_key("t", ("42",))           == '["t","42"]'
    canonical_key("t", (1.5,))            == '["t",{"f":"1.5"}]'
    canonical_key("t", (b"\\x01",))        == '["t",{"b":"AQ=="}]'
    canonical_key("t", (InvalidText(b"\\xc3("),)) == '["t",{"xt":"wyg="}]'   # TEXT, not UTF-8

    object_uuid(table, pk) == uuid.uuid5(UUID_NAMESPACE, canonical_key(table, pk))

The values must be exactly what Python's ``sqlite3`` returns for the key columns
(int, float, str, bytes); ``1``, ``1.0``, ``"1"`` and ``b"1"`` are different keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import uuid
from typing import Any

import orjson

from sqlite_to_weaviate.sqlite_text import InvalidText

from .errors import MappingError

#: Fixed namespace of every object id this tool writes. Never change it: doing so
#: would give every existing object a new id.
UUID_NAMESPACE = uuid.UUID("0ad1f03f-ac40-40d3-a160-678005ed5ae5")
_NAMESPACE_BYTES = UUID_NAMESPACE.bytes


def encode_key_value(value: Any) -> Any:
    """Encode one SQLite value as a JSON-able, type-tagged value.

    int -> JSON integer (exact at any size); str -> JSON string; float -> ``{"f": repr}``;
    bytes -> ``{"b": base64}``; TEXT whose bytes are not UTF-8 (``InvalidText``) ->
    ``{"xt": base64}``; bool -> the int SQLite stores for it. NULL is not a key.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        _check_encodable(value)
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise MappingError("NaN cannot be part of a primary key")
        return {"f": repr(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, InvalidText):
        return {"xt": value.base64()}
    if value is None:
        raise MappingError("NULL cannot be part of a primary key (declare the key NOT NULL)")
    raise MappingError(f"unsupported primary-key value type {type(value).__name__}: {value!r}")


def compact_json_bytes(value: Any) -> bytes:
    """UTF-8 of ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, computed fast.

    Ids and content hashes are computed for every row the pipeline moves (and every row
    ``verify`` reads), and the standard library's encoder was a fifth of the relay's CPU.
    For the values encoded here (str, 64-bit int, None, lists and str-keyed dicts of them)
    orjson's output is byte-identical, which ``tests/unit/test_mapping_identity.py`` checks
    over every code point; anything orjson refuses (an int beyond 64 bits) takes the
    standard library's path. Bytes, because they go straight into a hash.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def compact_json(value: Any) -> str:
    """:func:`compact_json_bytes` as text."""
    return compact_json_bytes(value).decode("utf-8")


def _check_encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MappingError(f"key text is not valid Unicode (lone surrogate): {text!r}") from exc


def canonical_key(table: str, pk_values: tuple[Any, ...]) -> str:
    """The unambiguous string identifying a row: a compact JSON array.

    ``json.dumps([table, *encoded_values], separators=(",", ":"), ensure_ascii=False)``.
    JSON string quoting makes table names and text keys containing commas, quotes or
    brackets unambiguous, and the type tags keep 1, 1.0, "1" and b"1" apart.
    """
    return _canonical_key_bytes(table, pk_values).decode("utf-8")


def _canonical_key_bytes(table: str, pk_values: tuple[Any, ...]) -> bytes:
    if not isinstance(table, str) or not table:
        raise MappingError(f"table name must be a non-empty string, got {table!r}")
    if not isinstance(pk_values, (tuple, list)) or not pk_values:
        raise MappingError(f"primary-key values must be a non-empty tuple, got {pk_values!r}")
    try:
        return compact_json_bytes([table, *(v if type(v) is int or type(v) is str else encode_key_value(v)
                                            for v in pk_values)])  # str checked when serialized
    except UnicodeEncodeError as exc:  # a lone surrogate in the table name
        raise MappingError(f"key text is not valid Unicode (lone surrogate): {table!r}") from exc


def encode_value_fast(value: Any) -> Any:
    """:func:`encode_key_value` for the common int and str without its checks (hot paths).

    A str is only checked for lone surrogates when it is serialized: orjson refuses one, the
    standard library's fallback then fails to encode it, and the caller turns that
    ``UnicodeEncodeError`` into a ``MappingError``. NULL stays ``None`` (a value, not a key).
    """
    kind = type(value)
    return value if kind is int or kind is str or value is None else encode_key_value(value)


def object_uuid_bytes(table: str, pk_values: tuple[Any, ...]) -> bytes:
    """The 16 bytes of :func:`object_uuid`, without building a ``UUID`` (verify's hot path).

    RFC 4122 version 5: the first 16 bytes of sha1(namespace + name) with the version
    nibble set to 5 and the variant bits to 10, exactly as ``uuid.uuid5`` computes them.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + _canonical_key_bytes(table, pk_values)).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest)


def object_uuid(table: str, pk_values: tuple[Any, ...]) -> uuid.UUID:
    """``uuid5(UUID_NAMESPACE, canonical_key(table, pk_values))``."""
    return uuid.UUID(bytes=object_uuid_bytes(table, tuple(pk_values)))


def key_text(pk_values: tuple[Any, ...]) -> str:
    """Human-readable text of a key, used for the ``original_id`` metadata property.

    A single-column key is its plain text (int as decimal, float as ``repr``, bytes as
    base64); a composite key is the compact JSON array of the encoded values.
    """
    if len(pk_values) == 1:
        (value,) = pk_values
        encoded = encode_key_value(value)
        if isinstance(encoded, dict):
            return next(iter(encoded.values()))
        return str(encoded)
    return compact_json([encode_key_value(v) for v in pk_values])
