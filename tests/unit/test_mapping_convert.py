"""Every (storage class, target type) rule of the value converters."""

from __future__ import annotations

import math
import struct
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlite_to_weaviate.mapping import DataType, MappingError, decode_vector, encode_vector
from sqlite_to_weaviate.mapping.convert import convert_value, resolve_timezone
from sqlite_to_weaviate.mapping.errors import ValueConversionError

T = DataType
UTC = timezone.utc


def conv(value, data_type, **kw):
    return convert_value(value, data_type, **kw)


@pytest.mark.parametrize("data_type", list(DataType))
def test_null_is_absent_for_every_type(data_type: DataType) -> None:
    assert conv(None, data_type) is None


# ---- INT -------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (0, 0), (-1, -1), (2**53, 2**53), (-(2**53), -(2**53)), (2**53 - 1, 2**53 - 1),
    (3.0, 3), (-7.0, -7), ("42", 42), ("-42", -42), ("+5", 5), (True, 1),
])
def test_int_exact(value, expected) -> None:
    result = conv(value, T.INT)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value, reason", [
    (2**53 + 1, r"beyond \+-2\^53.*type = \"text\""),
    (-(2**53) - 1, r"beyond \+-2\^53"),
    (2**63 - 1, r"beyond \+-2\^53"),
    (-(2**63), r"beyond \+-2\^53"),
    (1.5, "fractional part"),
    (float("nan"), "not a finite number"),
    (float("inf"), "not a finite number"),
    (float(2**60), r"beyond \+-2\^53"),
    ("4.2", "not an integer literal"),
    ("abc", "not an integer literal"),
    (" 4", "not an integer literal"),
    (b"\x01", "cannot be an int"),
])
def test_int_refusals(value, reason) -> None:
    with pytest.raises(ValueConversionError, match=reason):
        conv(value, T.INT)


# ---- TEXT ------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("hello", "hello"), ("", ""), ("ünïcödé ✓ \x00 nul", "ünïcödé ✓ \x00 nul"),
    (42, "42"), (2**63 - 1, "9223372036854775807"), (-(2**63), "-9223372036854775808"),
    (2**53 + 1, "9007199254740993"), (1.5, "1.5"), (0.1, "0.1"), (1e300, "1e+300"),
    ("héllo".encode(), "héllo"), (b"", ""),
])
def test_text(value, expected) -> None:
    assert conv(value, T.TEXT) == expected


@pytest.mark.parametrize("value", [b"\xff\xfe", float("nan"), float("inf"), float("-inf"), "\udc80"])
def test_text_refusals(value) -> None:
    with pytest.raises(ValueConversionError):
        conv(value, T.TEXT)


# ---- NUMBER ----------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (1.5, 1.5), (-0.0, -0.0), (5e-324, 5e-324), (1.7976931348623157e308, 1.7976931348623157e308),
    (3, 3.0), (2**53, float(2**53)), ("2.5", 2.5), ("1e3", 1000.0), (".5", 0.5),
])
def test_number(value, expected) -> None:
    result = conv(value, T.NUMBER)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value", [
    float("nan"), float("inf"), float("-inf"), 2**53 + 1, 2**63 - 1, "1e400", "nan", "inf", "abc", b"1",
])
def test_number_refusals(value) -> None:
    with pytest.raises(ValueConversionError):
        conv(value, T.NUMBER)


# ---- BOOLEAN ---------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (0, False), (1, True), (0.0, False), (1.0, True), ("true", True), ("FALSE", False), ("1", True), ("0", False),
])
def test_boolean(value, expected) -> None:
    assert conv(value, T.BOOLEAN) is expected


@pytest.mark.parametrize("value", [2, -1, 0.5, "yes", "", b"\x01", float("nan")])
def test_boolean_refusals(value) -> None:
    with pytest.raises(ValueConversionError, match="not a boolean"):
        conv(value, T.BOOLEAN)


# ---- DATE ------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("2024-03-01", "2024-03-01T00:00:00Z"),
    ("2024-03-01 10:00:00", "2024-03-01T10:00:00Z"),           # SQLite CURRENT_TIMESTAMP (UTC)
    ("2024-03-01 10:00", "2024-03-01T10:00:00Z"),
    ("2024-03-01T10:00:00.123", "2024-03-01T10:00:00.123Z"),
    ("2024-03-01T10:00:00.500000", "2024-03-01T10:00:00.5Z"),   # trailing zeros dropped
    ("2024-03-01T10:00:00.000", "2024-03-01T10:00:00Z"),
    ("2024-03-01T10:00:00.123456789", "2024-03-01T10:00:00.123456789Z"),  # nanoseconds kept
    ("2024-03-01T10:00:00Z", "2024-03-01T10:00:00Z"),
    ("2024-03-01t10:00:00z", "2024-03-01T10:00:00Z"),
    ("2024-03-01T12:30:00+02:00", "2024-03-01T10:30:00Z"),
    ("2024-03-01T12:30:00+0200", "2024-03-01T10:30:00Z"),
    ("2024-03-01T12:30:00+02", "2024-03-01T10:30:00Z"),
    ("2024-03-01T00:30:00-05:30", "2024-03-01T06:00:00Z"),
    ("2024-02-29 23:59:59.999999+00:00", "2024-02-29T23:59:59.999999Z"),
    ("0001-01-01 00:00:00", "0001-01-01T00:00:00Z"),
    ("9999-12-31 23:59:59", "9999-12-31T23:59:59Z"),
])
def test_iso_dates(value, expected) -> None:
    assert conv(value, T.DATE) == expected


@pytest.mark.parametrize("value", [
    "2024-02-30", "2024-13-01", "2024-03-01 25:00:00", "2024-03-01T10:00:60", "01/03/2024", "2024-03-01 ",
    " 2024-03-01", "2024-03-01Z", "20240301", "2024-W09-5", "yesterday", "2024-03-01T10:00:00+24:00",
    "0001-01-01T00:00:00+01:00", b"2024-03-01",
])
def test_bad_dates(value) -> None:
    with pytest.raises(ValueConversionError):
        conv(value, T.DATE)


def test_naive_timezone_rule() -> None:
    try:
        paris = resolve_timezone("Europe/Paris")
    except MappingError:
        pytest.skip("no IANA time zone database on this machine (install tzdata)")
    assert conv("2024-07-01 12:00:00", T.DATE, naive_tz=paris) == "2024-07-01T10:00:00Z"
    assert conv("2024-01-01 12:00:00", T.DATE, naive_tz=paris) == "2024-01-01T11:00:00Z"
    assert conv("2024-01-01 12:00:00", T.DATE, naive_tz=resolve_timezone("-03:00")) == "2024-01-01T15:00:00Z"
    # A zone in the value wins over the naive rule.
    assert conv("2024-01-01 12:00:00Z", T.DATE, naive_tz=paris) == "2024-01-01T12:00:00Z"


def test_unknown_timezone() -> None:
    with pytest.raises(MappingError, match="unknown time zone 'Mars/Olympus'"):
        resolve_timezone("Mars/Olympus")


@pytest.mark.parametrize("value, unit, expected", [
    (0, "s", "1970-01-01T00:00:00Z"),
    (1709287200, "s", "2024-03-01T10:00:00Z"),
    (-1, "s", "1969-12-31T23:59:59Z"),
    (1709287200123, "ms", "2024-03-01T10:00:00.123Z"),
    (1709287200000, "ms", "2024-03-01T10:00:00Z"),
    (1709287200.25, "s", "2024-03-01T10:00:00.25Z"),
    (1.5, "ms", "1970-01-01T00:00:00.0015Z"),
    (253402300799, "s", "9999-12-31T23:59:59Z"),
])
def test_unix_dates(value, unit, expected) -> None:
    assert conv(value, T.DATE, date_unit=unit) == expected


@pytest.mark.parametrize("value", [253402300800, 2**63 - 1, -(2**63), float("inf"), float("nan"), True])
def test_unix_date_refusals(value) -> None:
    with pytest.raises(ValueConversionError):
        conv(value, T.DATE)


def test_refusals_name_the_fix() -> None:
    """A DATETIME column of unix milliseconds, a NUMERIC column that also holds text: the reason says what to set."""
    with pytest.raises(ValueConversionError, match='holds unix milliseconds, set date_unit = "ms"'):
        conv(1709287200123, T.DATE)
    with pytest.raises(ValueConversionError, match=r"out of range$"):
        conv(2**63 - 1, T.DATE, date_unit="ms")
    with pytest.raises(ValueConversionError, match='map it as type = "text"'):
        conv("N/A", T.NUMBER)
    with pytest.raises(ValueConversionError, match='map it as type = "text"'):
        conv("12,50", T.INT)
    assert conv("N/A", T.TEXT) == "N/A" and conv(12.5, T.TEXT) == "12.5" and conv(12, T.TEXT) == "12"


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_date_round_trip(moment: datetime) -> None:
    text = conv(moment.isoformat(), T.DATE)
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == moment


@given(st.integers(min_value=-62135596800, max_value=253402300799))
def test_unix_seconds_round_trip(seconds: int) -> None:
    text = conv(seconds, T.DATE)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


# ---- BLOB, OBJECT, vectors -------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (b"\x00\xff", "AP8="), (b"", None), ("hé", "aMOp"), (bytearray(b"ab"), "YWI="), (memoryview(b"ab"), "YWI="),
])
def test_blob(value, expected) -> None:
    assert conv(value, T.BLOB) == expected


@pytest.mark.parametrize("value", [1, 1.5])
def test_blob_refusals(value) -> None:
    with pytest.raises(ValueConversionError, match="cannot be a blob"):
        conv(value, T.BLOB)


NESTED = (("name", T.TEXT), ("count", T.INT), ("when", T.DATE), ("ok", T.BOOLEAN), ("x", T.NUMBER))


def test_object() -> None:
    text = '{"name":"n","count":3,"when":"2024-01-01 00:00:00","ok":true,"x":1,"other":null}'
    assert conv(text, T.OBJECT, nested=NESTED) == {
        "name": "n", "count": 3, "when": "2024-01-01T00:00:00Z", "ok": True, "x": 1.0,
    }
    assert conv(b'{"name":"b"}', T.OBJECT, nested=NESTED) == {"name": "b"}


@pytest.mark.parametrize("text, reason", [
    ('{"zzz":1}', "'zzz' is not a declared nested property"),
    ("[1,2]", "not an object"),
    ('"s"', "not an object"),
    ("{bad", "invalid JSON"),
    ('{"x":NaN}', "NaN is not representable"),
    ('{"x":Infinity}', "Infinity is not representable"),
    ('{"name":{"a":1}}', "nested dict"),
    ('{"count":9007199254740993}', r"beyond \+-2\^53"),
])
def test_object_refusals(text, reason) -> None:
    with pytest.raises(ValueConversionError, match=reason):
        conv(text, T.OBJECT, nested=NESTED)


def test_vector_decoding() -> None:
    blob = struct.pack("<3f", 1.0, -0.5, 0.1)
    vector = decode_vector(blob)
    assert vector == [1.0, -0.5, struct.unpack("<f", struct.pack("<f", 0.1))[0]]
    assert encode_vector(vector) == blob
    assert decode_vector(None) is None


@pytest.mark.parametrize("value, reason", [
    (b"\x00\x00\x80", "multiple of 4"),
    (b"", "multiple of 4"),
    (struct.pack("<f", math.nan), "NaN or infinity"),
    (struct.pack("<f", math.inf), "NaN or infinity"),
    ("1,2,3", "expected a BLOB"),
    (12, "expected a BLOB"),
])
def test_vector_refusals(value, reason) -> None:
    with pytest.raises(ValueConversionError, match=reason):
        decode_vector(value)


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=64))
def test_vector_round_trip(values: list[float]) -> None:
    assert decode_vector(encode_vector(values)) == values


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_safe_ints_are_exact(value: int) -> None:
    assert conv(value, T.INT) == value
    assert conv(value, T.NUMBER) == value
    assert int(conv(value, T.TEXT)) == value


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_sqlite_int_is_exact_as_text(value: int) -> None:
    assert conv(value, T.TEXT) == str(value)
    if abs(value) > 2**53:
        with pytest.raises(ValueConversionError):
            conv(value, T.INT)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_floats_are_exact(value: float) -> None:
    assert conv(value, T.NUMBER) == value
    assert float(conv(value, T.TEXT)) == value
