"""Pure field-level comparison of the object a row *should* be with the object Weaviate holds.

The expected side is ``TableMapping.to_object(row)``; the actual side is what the server
returns, which differs in representation only: dates come back as ``datetime`` objects
(the mapping writes RFC 3339 text, possibly with more than microsecond precision), ints
may come back as floats, vectors are float32, references are sets of target uuids, and a
property that was never written reads as ``None``. Everything is normalised to one form
before comparing, so only real differences are reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlite_to_weaviate.mapping import HASH_PROPERTY, DataType, TableMapping, WeaviateObject

VECTOR_RTOL = 1e-6


@dataclass(frozen=True)
class FieldDiff:
    field: str          # property name, "vector", "vector:<name>" or "reference:<property>"
    expected: Any
    actual: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "expected": _jsonable(self.expected), "actual": _jsonable(self.actual)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    if isinstance(value, list) and len(value) > 8:
        return value[:8] + [f"... ({len(value)} values)"]
    return value


def parse_date(value: Any) -> Any:
    """RFC 3339 text or datetime -> aware UTC datetime at microsecond precision (else unchanged)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    if isinstance(value, str):
        text = value.replace("z", "Z").replace("Z", "+00:00")
        if "." in text:
            head, _, tail = text.partition(".")
            digits = "".join(ch for ch in tail if ch.isdigit())
            zone = tail[len(digits):]
            text = f"{head}.{(digits + '000000')[:6]}{zone}"
        try:
            return parse_date(datetime.fromisoformat(text))
        except ValueError:
            return value
    return value


def normalise(value: Any, data_type: DataType | None, nested: Mapping[str, DataType] | None = None) -> Any:
    """One comparable form per Weaviate type."""
    if value is None:
        return None
    if data_type is DataType.DATE:
        return parse_date(value)
    if data_type in (DataType.INT, DataType.NUMBER) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if data_type is DataType.OBJECT and isinstance(value, Mapping):
        types = nested or {}
        return {k: normalise(v, types.get(k)) for k, v in value.items() if v is not None}
    return value


def vectors_equal(expected: Any, actual: Any) -> bool:
    """Equal lengths and every component within float32 round-off."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if len(expected) != len(actual):
        return False
    return all(math.isclose(a, b, rel_tol=VECTOR_RTOL, abs_tol=1e-30) for a, b in zip(expected, actual))


def property_types(table: TableMapping) -> dict[str, tuple[DataType, dict[str, DataType]]]:
    """Property name -> (type, nested types) for every property the mapping writes."""
    types = {c.property: (c.data_type, dict(c.nested)) for c in table.columns}
    metadata = table.metadata
    if not metadata.is_empty():
        fields = {n: t for n, t in metadata.fields()}
        if metadata.property:
            types[metadata.property] = (DataType.OBJECT, fields)
        else:
            types.update({n: (t, {}) for n, t in fields.items()})
    return types


def volatile_properties(table: TableMapping) -> set[str]:
    """Properties that legitimately change on every write (the migration timestamp)."""
    stamp = table.metadata.migration_timestamp
    return {stamp} if stamp and not table.metadata.property else set()


def compare_object(
    table: TableMapping,
    expected: WeaviateObject,
    properties: Mapping[str, Any],
    vector: Any = None,
    references: Mapping[str, set[str]] | None = None,
) -> list[FieldDiff]:
    """Every field of ``expected`` that the stored object does not reproduce."""
    diffs: list[FieldDiff] = []
    types = property_types(table)
    skip = volatile_properties(table)
    names = set(expected.properties) | (set(properties) & set(types)) | ({HASH_PROPERTY} & set(properties))
    for name in sorted(names - skip):
        data_type, nested = types.get(name, (DataType.TEXT, {}))
        if table.metadata.property == name and table.metadata.migration_timestamp:
            nested = {k: v for k, v in nested.items() if k != table.metadata.migration_timestamp}
            want = {k: v for k, v in (expected.properties.get(name) or {}).items() if k in nested}
            got = {k: v for k, v in (properties.get(name) or {}).items() if k in nested}
        else:
            want, got = expected.properties.get(name), properties.get(name)
        if normalise(want, data_type, nested) != normalise(got, data_type, nested):
            diffs.append(FieldDiff(name, want, got))
    diffs.extend(_compare_vectors(table, expected.vector, vector))
    actual_refs = references or {}
    for reference in table.references:
        want_refs = set(expected.references.get(reference.property, []))
        got_refs = set(actual_refs.get(reference.property, set()))
        if want_refs != got_refs:
            diffs.append(FieldDiff(f"reference:{reference.property}", want_refs, got_refs))
    return diffs


def _compare_vectors(table: TableMapping, expected: Any, actual: Any) -> list[FieldDiff]:
    if table.named_vectors:
        want = expected or {}
        got = actual if isinstance(actual, Mapping) else {}
        return [FieldDiff(f"vector:{name}", want.get(name), got.get(name))
                for name, _ in table.named_vectors if not vectors_equal(want.get(name), got.get(name))]
    if table.vector_column:
        got = actual if not isinstance(actual, Mapping) else None
        if not vectors_equal(expected, got):
            return [FieldDiff("vector", expected, got)]
    return []
