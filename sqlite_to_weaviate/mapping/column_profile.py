"""What every value of one column says about the type that keeps it: the profile that
``suggest.py`` turns into mapping suggestions (kept apart: it is the part that reads values).

Each value is tried against the column's type and the candidates in :data:`FIX_ORDER`,
against ISO date text, as a float32 vector and as a JSON object; the profile keeps counts,
never the values, so memory stays flat whatever the table's size.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from .convert import _ISO_DATETIME, BEYOND_2_53, convert_value, parse_iso_date, resolve_timezone
from .errors import MappingError, ValueConversionError
from .model import ColumnMapping
from .naming import validate_property_name
from .types import DataType

#: Types tried, in this order, for a column whose type refuses values (date is never guessed for numbers).
FIX_ORDER = (DataType.INT, DataType.NUMBER, DataType.BOOLEAN, DataType.TEXT, DataType.BLOB)
#: A JSON column with more distinct keys than this is not suggested as an object.
MAX_JSON_KEYS = 32
#: Float32 values of a vector candidate stay within this magnitude (embeddings do; random bytes do not).
MAX_VECTOR_MAGNITUDE = 1e3

@dataclass
class ColumnProfile:
    """What one column's values allow, learned in one pass over every value."""

    column: ColumnMapping
    explicit_type: bool
    is_key: bool
    non_null: int = 0
    refused: Counter = field(default_factory=Counter)          # refusal kind -> values
    refusal_example: str | None = None
    largest_beyond: int | None = None
    viable: dict[DataType, bool] = field(default_factory=dict)
    dates: int = 0
    naive_dates: int = 0
    date_possible: bool = False
    vector_length: int | None = None
    vector_possible: bool = False
    json_possible: bool = False
    json_keys: dict[str, set[str]] = field(default_factory=dict)
    json_why_not: str | None = None

    def __post_init__(self) -> None:
        current = self.column.data_type
        self.viable = {t: True for t in FIX_ORDER if t is not current}
        free = not self.explicit_type and not self.is_key
        self.date_possible = free and current is DataType.TEXT
        self.json_possible = free and current is DataType.TEXT
        self.vector_possible = free and current is DataType.BLOB

    def observe(self, value: Any) -> bool:
        """Profile one value; True when the column's current type refuses it."""
        if value is None:
            return False
        self.non_null += 1
        refused = False
        try:
            self.column.convert(value)
        except ValueConversionError as exc:
            refused = True
            self.refused[exc.kind] += 1
            self.refusal_example = self.refusal_example or str(exc).split("; ")[0]
            if exc.kind == BEYOND_2_53:
                magnitude = int(value) if isinstance(value, (int, float)) else None
                if magnitude is not None and (self.largest_beyond is None or abs(magnitude) > abs(self.largest_beyond)):
                    self.largest_beyond = magnitude
        for data_type, ok in self.viable.items():
            if ok:
                try:
                    convert_value(value, data_type, naive_tz=timezone.utc, date_unit=self.column.date_unit)
                except ValueConversionError:
                    self.viable[data_type] = False
        if self.date_possible:
            self._observe_date(value)
        if self.vector_possible:
            self._observe_vector(value)
        if self.json_possible:
            self._observe_json(value)
        return refused

    def _observe_date(self, value: Any) -> None:
        if not isinstance(value, str):
            self.date_possible = False
            return
        try:
            parse_iso_date(value, resolve_timezone(self.column.naive_timezone))
        except ValueConversionError:
            self.date_possible = False
            return
        self.dates += 1
        match = _ISO_DATETIME.fullmatch(value)
        if match is not None and match.group("zone") is None:
            self.naive_dates += 1

    def _observe_vector(self, value: Any) -> None:
        if not isinstance(value, bytes) or not value or len(value) % 4 or len(value) < 16 \
                or (self.vector_length is not None and len(value) != self.vector_length):
            self.vector_possible = False
            return
        self.vector_length = len(value)
        floats = struct.unpack(f"<{len(value) // 4}f", value)
        if not all(math.isfinite(x) and abs(x) <= MAX_VECTOR_MAGNITUDE for x in floats) or not any(floats):
            self.vector_possible = False

    def _observe_json(self, value: Any) -> None:
        if not isinstance(value, str) or not value.lstrip().startswith("{"):
            self._no_json("not every value is a JSON object")
            return
        try:
            parsed = json.loads(value, parse_constant=_reject)
        except ValueError:
            self._no_json("not every value is valid JSON")
            return
        if not isinstance(parsed, dict):
            self._no_json("not every value is a JSON object")
            return
        for key, member in parsed.items():
            if isinstance(member, (dict, list)):
                self._no_json(f"key {key!r} holds nested {type(member).__name__}s (only scalars can be nested)")
                return
            kinds = self.json_keys.get(key)
            if kinds is None:
                if len(self.json_keys) >= MAX_JSON_KEYS:
                    self._no_json(f"more than {MAX_JSON_KEYS} distinct keys")
                    return
                try:
                    validate_property_name(key, "a nested property")
                except MappingError:
                    self._no_json(f"key {key!r} is not a valid property name")
                    return
                kinds = self.json_keys[key] = set()
            if member is not None:
                kinds.add("bigint" if isinstance(member, int) and not isinstance(member, bool)
                          and abs(member) > 2**53 else type(member).__name__)

    def _no_json(self, why: str) -> None:
        self.json_possible = False
        self.json_why_not = why

    # ------------------------------------------------------------ conclusions
    def fix(self) -> DataType | None:
        """The first type of FIX_ORDER that converts every value, when the current type refuses some."""
        if not self.refused:
            return None
        default_ok = self.column.default is None
        for data_type in FIX_ORDER:
            if self.viable.get(data_type):
                if not default_ok and not _converts(self.column.default, data_type):
                    continue
                return data_type
        return None

    def nested(self) -> dict[str, str] | None:
        """Nested property types of a JSON-object column, or None."""
        if not self.json_possible or not self.json_keys or self.non_null == 0:
            return None
        out: dict[str, str] = {}
        for key, kinds in self.json_keys.items():
            if "bool" in kinds and len(kinds) > 1:
                return None
            if not kinds or kinds & {"str", "bigint"}:
                out[key] = "text"
            elif kinds == {"bool"}:
                out[key] = "boolean"
            elif kinds == {"int"}:
                out[key] = "int"
            else:
                out[key] = "number"
        return out


def _converts(value: Any, data_type: DataType) -> bool:
    try:
        convert_value(value, data_type)
        return True
    except ValueConversionError:
        return False


def _reject(name: str) -> Any:
    raise ValueError(name)
