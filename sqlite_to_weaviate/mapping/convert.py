"""Pure value converters: one SQLite value -> one JSON-serializable Weaviate value.

SQLite is dynamically typed, so any storage class (int, float, str, bytes, None) can
arrive in any column whatever its declared type. Every (storage class, target type)
pair has a defined fate here: an exact conversion, or a :class:`ValueConversionError`
with a reason. Nothing is rounded silently. ``None`` in means "property absent" out.

The rules are listed as a table in docs/mapping.md; keep the two in step.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_to_weaviate.sqlite_text import InvalidText

from .errors import MappingError, ValueConversionError
from .types import MAX_SAFE_INT, DataType

_INT_LITERAL = re.compile(r"[+-]?[0-9]+")
_NUMBER_LITERAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ISO_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<frac>[0-9]{1,9}))?)?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TRUE_TEXT = {"true", "1"}

# refusal kinds shared by several converters (ValueConversionError.kind)
BEYOND_2_53 = "beyond ±2^53"
NOT_FINITE = "not finite (NaN or infinity)"
BLOB_VALUE = "BLOB value"
DATE_RANGE = "date out of range"
JSON_SHAPE = "JSON Weaviate cannot hold as an object"
BAD_VECTOR = "not a float32 vector"
VECTOR_LENGTH = "a vector of another length"
_FALSE_TEXT = {"false", "0"}


def describe(value: Any) -> str:
    """Short, bounded description of a value for error messages."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def resolve_timezone(name: str) -> tzinfo:
    """``"UTC"``, a fixed offset ``"+02:00"``, or an IANA zone name like ``"Europe/Paris"``."""
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    match = re.fullmatch(r"([+-])([0-9]{2}):?([0-9]{2})", name)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MappingError(
            f"unknown time zone {name!r}: use 'UTC', a fixed offset like '+02:00' "
            "or an IANA name like 'Europe/Paris'"
        ) from exc


def to_int(value: Any) -> int:
    """INT property: exact integers within +-2^53 only."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueConversionError(f"{describe(value)} is not a finite number; Weaviate cannot store NaN or infinity",
                                       kind=NOT_FINITE)
        if not value.is_integer():
            raise ValueConversionError(f"{describe(value)} has a fractional part; map the column as type = \"number\"",
                                       kind="fractional value", fix="number")
        result = int(value)
    elif isinstance(value, str):
        if not _INT_LITERAL.fullmatch(value):
            raise ValueConversionError(
                f"{describe(value)} is not an integer literal; if the column holds text as well as numbers, "
                "map it as type = \"text\"", kind="text that is not an integer", fix="text"
            )
        result = int(value)
    else:
        raise ValueConversionError(f"{describe(value)} cannot be an int; map the column as type = \"blob\"",
                                   kind=BLOB_VALUE, fix="blob")
    if abs(result) > MAX_SAFE_INT:
        raise ValueConversionError(
            f"integer {result} is beyond +-2^53: Weaviate stores numbers as float64 and would round it; "
            "map the column as type = \"text\" to keep it exact", kind=BEYOND_2_53, fix="text",
        )
    return result


def to_number(value: Any) -> float:
    """NUMBER property: finite floats; ints only where float64 holds them exactly."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise ValueConversionError(
                f"integer {value} is beyond +-2^53 and would be rounded as a number; map the column as type = \"text\"",
                kind=BEYOND_2_53, fix="text",
            )
        return float(value)
    if isinstance(value, float):
        result = value
    elif isinstance(value, str):
        if not _NUMBER_LITERAL.fullmatch(value):
            raise ValueConversionError(
                f"{describe(value)} is not a number literal; if the column holds text as well as numbers, "
                "map it as type = \"text\" (numbers become their exact decimal text)",
                kind="text that is not a number", fix="text"
            )
        result = float(value)
    else:
        raise ValueConversionError(f"{describe(value)} cannot be a number", kind=BLOB_VALUE, fix="blob")
    if not math.isfinite(result):
        raise ValueConversionError(f"{describe(value)} is not finite; Weaviate cannot store NaN or infinity",
                                   kind=NOT_FINITE)
    return result


def to_text(value: Any) -> str:
    """TEXT property: text as is, numbers as exact decimal text, UTF-8 blobs decoded."""
    if isinstance(value, InvalidText):
        raise ValueConversionError(f"{value.describe()}; fix the value in SQLite, or map the column as "
                                   "type = \"blob\" to store its bytes")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueConversionError(f"{describe(value)} is not valid Unicode", kind="invalid Unicode",
                                       fix="blob") from exc
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueConversionError(f"{describe(value)} is not finite; Weaviate cannot store NaN or infinity",
                                       kind=NOT_FINITE)
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueConversionError(
                f"BLOB of {len(bytes(value))} bytes is not valid UTF-8 text; map the column as type = \"blob\"",
                kind="BLOB that is not UTF-8 text", fix="blob",
            ) from exc
    raise ValueConversionError(f"{describe(value)} cannot be text")


def to_boolean(value: Any) -> bool:
    """BOOLEAN property: 0/1 (int or float) and the texts true/false/1/0 (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in _TRUE_TEXT:
            return True
        if lowered in _FALSE_TEXT:
            return False
    numeric = isinstance(value, (int, float))
    raise ValueConversionError(f"{describe(value)} is not a boolean (expected 0, 1, 'true' or 'false')",
                               kind="not 0 or 1" if numeric else "not a boolean",
                               fix=("int" if isinstance(value, int) else "number") if numeric else "text")


def to_blob(value: Any) -> str | None:
    """BLOB property: standard base64 of the bytes; text is encoded as UTF-8 first (TEXT that
    is not UTF-8 keeps its bytes).

    An empty value becomes an absent property: Weaviate refuses "" as a blob, and there is
    no other way to store zero bytes (documented in docs/mapping.md).
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii") or None
    if isinstance(value, str):
        return base64.b64encode(value.encode("utf-8")).decode("ascii") or None
    if isinstance(value, InvalidText):  # TEXT that is not UTF-8: its exact bytes
        return value.base64() or None
    raise ValueConversionError(f"{describe(value)} cannot be a blob", kind="number in a blob column", fix="text")


def _format_utc(moment: datetime, fraction_digits: str) -> str:
    """RFC 3339 in UTC with 'Z'; fraction trailing zeros removed, omitted when zero."""
    if not 1 <= moment.year <= 9999:
        raise ValueConversionError(f"date {moment!r} is outside years 0001-9999", kind=DATE_RANGE, fix="text")
    fraction = fraction_digits.rstrip("0")
    # Not strftime: glibc's %Y does not zero-pad years before 1000.
    stamp = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
             f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    return stamp + (f".{fraction}" if fraction else "") + "Z"


def parse_iso_date(text: str, naive_tz: tzinfo) -> str:
    """ISO 8601 / SQLite date text -> RFC 3339 UTC text.

    Accepts ``YYYY-MM-DD``, ``YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]`` and a zone
    (``Z``, ``+HH:MM``, ``+HHMM``, ``+HH``). Up to 9 fraction digits are kept exactly.
    Values without a zone are read in ``naive_tz``.
    """
    match = _ISO_DATETIME.fullmatch(text)
    if not match:
        raise ValueConversionError(
            f"{describe(text)} is not an ISO 8601 date (YYYY-MM-DD[ HH:MM[:SS[.fff]]][zone])",
            kind="not an ISO 8601 date", fix="text",
        )
    frac = match.group("frac") or ""
    try:
        year, month, day = (int(part) for part in match.group("date").split("-"))
        moment = datetime(
            year, month, day,
            int(match.group("hour") or 0), int(match.group("minute") or 0), int(match.group("second") or 0),
            int((frac + "000000")[:6]),
        )
    except ValueError as exc:
        raise ValueConversionError(f"{describe(text)} is not a valid date: {exc}", kind="invalid date",
                                   fix="text") from exc
    zone = match.group("zone")
    if zone in ("Z", "z") or (zone is None and naive_tz is timezone.utc):
        # Already UTC (the common case, and hot: the relay converts every row it sends).
        # The datetime above validated the fields; the text is the answer, reformatted.
        fraction = frac.rstrip("0")
        return (f"{match.group('date')}T{match.group('hour') or '00'}:{match.group('minute') or '00'}:"
                f"{match.group('second') or '00'}" + (f".{fraction}" if fraction else "") + "Z")
    if zone is None:
        moment = moment.replace(tzinfo=naive_tz)
    elif zone in ("Z", "z"):
        moment = moment.replace(tzinfo=timezone.utc)
    else:
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if offset >= timedelta(hours=24):
            raise ValueConversionError(f"{describe(text)} has an invalid zone offset", kind="invalid date",
                                       fix="text")
        moment = moment.replace(tzinfo=timezone(offset if zone[0] == "+" else -offset))
    try:
        utc = moment.astimezone(timezone.utc)
    except OverflowError as exc:
        raise ValueConversionError(f"{describe(text)} is out of range after conversion to UTC", kind=DATE_RANGE,
                                   fix="text") from exc
    return _format_utc(utc, frac)


def unix_to_date(value: int | float, unit: str) -> str:
    """Unix seconds or milliseconds -> RFC 3339 UTC text.

    Integers are exact; floats are rounded to the nearest microsecond (half to even),
    which is finer than a float64 can resolve for present-day timestamps anyway.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueConversionError(f"{describe(value)} is not a finite unix time", kind=NOT_FINITE)
    scale = {"s": 1_000_000, "ms": 1_000}[unit]
    try:
        micros = int((Decimal(value) * scale).to_integral_value(rounding=ROUND_HALF_EVEN))
        moment = _EPOCH + timedelta(microseconds=micros)
    except (OverflowError, InvalidOperation, ValueError) as exc:
        raise ValueConversionError(f"unix time {value!r} ({unit}) is out of range{_unit_hint(unit)}", kind=DATE_RANGE,
                                   fix="text" if isinstance(value, int) else "number") from exc
    return _format_utc(moment, f"{moment.microsecond:06d}")


def _unit_hint(unit: str) -> str:
    return "; if the column holds unix milliseconds, set date_unit = \"ms\" for it" if unit == "s" else ""


def to_date(value: Any, unit: str, naive_tz: tzinfo) -> str:
    """DATE property: ISO text or a unix number in the configured unit (no guessing)."""
    if isinstance(value, str):
        return parse_iso_date(value, naive_tz)
    if isinstance(value, bool):
        raise ValueConversionError(f"{describe(value)} is not a date", kind="not a date", fix="boolean")
    if isinstance(value, (int, float)):
        return unix_to_date(value, unit)
    raise ValueConversionError(f"{describe(value)} is not a date", kind=BLOB_VALUE, fix="blob")


def _reject_constant(name: str) -> Any:
    raise ValueConversionError(f"JSON constant {name} is not representable in Weaviate", kind=JSON_SHAPE, fix="text")


def to_object(value: Any, nested: tuple[tuple[str, DataType], ...], naive_tz: tzinfo, unit: str) -> dict[str, Any]:
    """OBJECT property: JSON object text whose keys are declared nested properties.

    Weaviate needs every nested property in the schema (auto-schema is off), so keys not
    declared in ``nested`` are an error; JSON null members (declared or not) are left out.
    """
    text = to_text(value)
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueConversionError(f"invalid JSON: {exc}", kind="invalid JSON", fix="text") from exc
    if not isinstance(parsed, dict):
        raise ValueConversionError(f"JSON value is a {type(parsed).__name__}, not an object; map the column as type = \"text\"",
                                   kind=JSON_SHAPE, fix="text")
    declared = dict(nested)
    result: dict[str, Any] = {}
    for key, member in parsed.items():
        if member is None:
            continue
        if key not in declared:
            raise ValueConversionError(
                f"JSON key {key!r} is not a declared nested property (declared: {sorted(declared)}); "
                "add it to the column's `nested` table or map the column as type = \"text\"",
                kind="undeclared JSON key", fix="text",
            )
        if isinstance(member, (dict, list)):
            raise ValueConversionError(f"JSON key {key!r} holds a nested {type(member).__name__}; only scalars are supported",
                                       kind=JSON_SHAPE, fix="text")
        result[key] = convert_value(member, declared[key], naive_tz=naive_tz, date_unit=unit)
    return result


def convert_value(
    value: Any,
    data_type: DataType,
    *,
    naive_tz: tzinfo = timezone.utc,
    date_unit: str = "s",
    nested: tuple[tuple[str, DataType], ...] = (),
) -> Any:
    """Convert one SQLite value to its Weaviate property value; ``None`` means absent."""
    if value is None:
        return None
    if data_type is DataType.TEXT:
        return to_text(value)
    if data_type is DataType.INT:
        return to_int(value)
    if data_type is DataType.NUMBER:
        return to_number(value)
    if data_type is DataType.BOOLEAN:
        return to_boolean(value)
    if data_type is DataType.DATE:
        return to_date(value, date_unit, naive_tz)
    if data_type is DataType.BLOB:
        return to_blob(value)
    if data_type is DataType.OBJECT:
        return to_object(value, nested, naive_tz, date_unit)
    raise MappingError(f"unsupported data type {data_type!r}")


def decode_vector(value: Any, length: int | None = None) -> list[float] | None:
    """A BLOB of little-endian float32 values -> list of floats; NULL -> no vector.

    float32 widens to float64 exactly, and Weaviate stores float32, so the vector reads
    back bit-identical. ``length``: the dimensions every vector of the column must have
    (:mod:`.vector_length`); Weaviate fixes its index to the first length it receives, so
    a wrong one is refused here, before it can reach an empty collection.
    """
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueConversionError(f"vector column holds {describe(value)}, expected a BLOB of float32 values",
                                   kind=BAD_VECTOR)
    data = bytes(value)
    if not data or len(data) % 4:
        raise ValueConversionError(
            f"vector BLOB has {len(data)} bytes, expected a non-empty multiple of 4 (little-endian float32)",
            kind=BAD_VECTOR,
        )
    vector = list(struct.unpack(f"<{len(data) // 4}f", data))
    # One C-level sum instead of a per-value check: a NaN or an infinity makes the sum
    # non-finite, and finite float32 values cannot overflow a float64 sum.
    if not math.isfinite(sum(vector)):
        raise ValueConversionError("vector contains NaN or infinity", kind=BAD_VECTOR)
    if length is not None and len(vector) != length:
        raise ValueConversionError(f"vector has {len(vector)} dimensions; this column's vectors have {length}",
                                   kind=VECTOR_LENGTH)
    return vector


def encode_vector(vector: list[float]) -> bytes:
    """Inverse of :func:`decode_vector`: pack floats as little-endian float32 (for apps and tests)."""
    return struct.pack(f"<{len(vector)}f", *vector)
