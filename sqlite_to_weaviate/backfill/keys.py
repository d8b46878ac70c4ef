"""Exact JSON encoding of primary-key values for the resumable checkpoint.

A keyset cursor is only correct if it resumes at exactly the key it stopped after: ``1``,
``1.0``, ``"1"`` and ``b"1"`` are different SQLite values that sort differently, so each
storage class gets an unambiguous JSON form and decodes back to the identical Python value
(``sqlite3`` returns int, float, str or bytes for a key; NULL is not a valid key).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from sqlite_to_weaviate.sqlite_text import InvalidText

KeyValue = int | float | str | bytes | InvalidText


def encode_value(value: KeyValue) -> Any:
    """int -> JSON int, str -> JSON string, float -> {"f": repr}, bytes -> {"b64": base64},
    TEXT that is not UTF-8 -> {"xt": base64}."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return {"f": repr(value)}  # repr round-trips exactly, including inf and -0.0
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, InvalidText):
        return {"xt": value.base64()}
    raise TypeError(f"not a primary-key value: {value!r} ({type(value).__name__})")


def decode_value(encoded: Any) -> KeyValue:
    """Inverse of :func:`encode_value`."""
    if isinstance(encoded, bool):
        return int(encoded)
    if isinstance(encoded, (int, str)):
        return encoded
    if isinstance(encoded, dict) and len(encoded) == 1:
        if "f" in encoded:
            return float(encoded["f"])
        if "b64" in encoded:
            return base64.b64decode(encoded["b64"], validate=True)
        if "xt" in encoded:
            return InvalidText(base64.b64decode(encoded["xt"], validate=True))
    raise ValueError(f"not an encoded primary-key value: {encoded!r}")


def encode_key(key: Sequence[KeyValue] | None) -> list[Any] | None:
    """A whole key (tuple of values in primary-key order) as a JSON-ready list."""
    return None if key is None else [encode_value(v) for v in key]


def decode_key(encoded: Sequence[Any] | None) -> tuple[KeyValue, ...] | None:
    return None if encoded is None else tuple(decode_value(v) for v in encoded)


def key_to_json(key: Sequence[KeyValue] | None) -> str:
    return json.dumps(encode_key(key), separators=(",", ":"), ensure_ascii=False)


def key_from_json(text: str) -> tuple[KeyValue, ...] | None:
    return decode_key(json.loads(text))
