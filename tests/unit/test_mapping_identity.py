"""Object identity: deterministic, documented, unambiguous."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlite_to_weaviate.mapping import UUID_NAMESPACE, MappingError, canonical_key, object_uuid
from sqlite_to_weaviate.mapping.identity import key_text

key_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(),
    st.floats(allow_nan=False),
    st.binary(),
)


def test_known_vectors() -> None:
    # Hardcoded: changing any of these breaks every existing deployment's object ids.
    assert str(UUID_NAMESPACE) == "0ad1f03f-ac40-40d3-a160-678005ed5ae5"
    assert str(object_uuid("messages", (42,))) == "be3c0ea4-eb0d-5e27-8954-a722435698f3"
    assert str(object_uuid("conversations", ("c1",))) == "f82f6b5e-2346-55cf-9db2-8b54efa2c09b"
    assert str(object_uuid("t", (1, "a", 1.5, b"\x01"))) == "f3319718-4ffb-5ad3-b7d2-80860715950b"


def test_canonical_key_format() -> None:
    assert canonical_key("t", (1, "a", 1.5, b"\x01")) == '["t",1,"a",{"f":"1.5"},{"b":"AQ=="}]'
    assert canonical_key("ünï", ("✓",)) == '["ünï","✓"]'
    assert canonical_key("t", (2**63 - 1,)) == '["t",9223372036854775807]'
    assert canonical_key("t", (-(2**63),)) == '["t",-9223372036854775808]'


def test_documented_formula_is_what_we_compute() -> None:
    table, pk = "my table", (7, "x")
    name = json.dumps([table, *pk], separators=(",", ":"), ensure_ascii=False)
    assert object_uuid(table, pk) == uuid.uuid5(uuid.UUID("0ad1f03f-ac40-40d3-a160-678005ed5ae5"), name)


@pytest.mark.parametrize(
    "a, b",
    [
        (("t", (1,)), ("t", ("1",))),
        (("t", (1,)), ("t", (1.0,))),
        (("t", (1,)), ("t", (b"1",))),
        (("t", ("1",)), ("t", (b"1",))),
        (("t", (1.0,)), ("t", ("1.0",))),
        (("a,b", ("c",)), ("a", ("b", "c"))),
        (("a", ("b,c",)), ("a", ("b", "c"))),
        (('a"', ("b",)), ("a", ('"b',))),
        (("t", ("",)), ("t", ("", ""))),
        (("t", (0.0,)), ("t", (-0.0,))),
        (("t", ('{"f":"1.5"}',)), ("t", (1.5,))),
        (("t", ('{"b":"AQ=="}',)), ("t", (b"\x01",))),
    ],
)
def test_no_collisions_for_tricky_keys(a: tuple, b: tuple) -> None:
    assert canonical_key(*a) != canonical_key(*b)
    assert object_uuid(*a) != object_uuid(*b)


def test_bool_is_the_int_sqlite_stores() -> None:
    assert object_uuid("t", (True,)) == object_uuid("t", (1,))


@pytest.mark.parametrize("pk", [(None,), (), (float("nan"),), ([1],), ("\ud800",)])
def test_invalid_keys_are_refused(pk: tuple) -> None:
    with pytest.raises(MappingError):
        object_uuid("t", pk)


def test_empty_table_name_refused() -> None:
    with pytest.raises(MappingError):
        canonical_key("", (1,))


def test_stable_across_processes() -> None:
    code = "from sqlite_to_weaviate.mapping import object_uuid; print(object_uuid('t', (1, 'ü', 2.5, b'z')))"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(object_uuid("t", (1, "ü", 2.5, b"z")))


@given(st.text(min_size=1), st.lists(key_values, min_size=1, max_size=3))
def test_canonical_key_round_trips_through_json(table: str, values: list) -> None:
    try:
        table.encode("utf-8")
        for v in values:
            if isinstance(v, str):
                v.encode("utf-8")
    except UnicodeEncodeError:
        return
    decoded = json.loads(canonical_key(table, tuple(values)))
    assert decoded[0] == table
    assert len(decoded) == len(values) + 1


@given(st.lists(key_values, min_size=1, max_size=2), st.lists(key_values, min_size=1, max_size=2))
def test_distinct_keys_give_distinct_ids(a: list, b: list) -> None:
    try:
        ka, kb = canonical_key("t", tuple(a)), canonical_key("t", tuple(b))
    except MappingError:
        return
    same = [(type(x), x if not isinstance(x, float) else repr(x)) for x in a] == [
        (type(x), x if not isinstance(x, float) else repr(x)) for x in b
    ]
    assert (ka == kb) == same


def test_key_text() -> None:
    assert key_text((42,)) == "42"
    assert key_text(("abc",)) == "abc"
    assert key_text((1.5,)) == "1.5"
    assert key_text((b"\x01",)) == "AQ=="
    assert key_text((1, "a")) == '[1,"a"]'


def test_compact_json_is_byte_identical_to_the_standard_library_for_every_code_point() -> None:
    """The id formula and content hash are defined by json.dumps; compact_json must not drift."""
    from sqlite_to_weaviate.mapping.identity import compact_json

    def reference(value: object) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    chars = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for start in range(0, len(chars), 4096):
        text = "".join(chars[start:start + 4096])
        value = ["t", text, {"f": text}, [text, None, 0]]
        assert compact_json(value) == reference(value), f"differs in code points from {ord(chars[start]):#x}"
    for number in (0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**80)):  # past 64 bits: stdlib fallback
        assert compact_json(["t", number]) == reference(["t", number])


@given(st.text(min_size=1), st.lists(key_values, min_size=1, max_size=4))
def test_fast_uuid_bytes_are_uuid5_of_the_documented_name(table: str, values: list) -> None:
    """verify's hot path builds the 16 bytes by hand; they must be ``uuid.uuid5``'s exactly."""
    from sqlite_to_weaviate.mapping.identity import object_uuid_bytes

    try:
        name = canonical_key(table, tuple(values))
    except MappingError:  # a lone surrogate: both paths refuse it
        with pytest.raises(MappingError):
            object_uuid_bytes(table, tuple(values))
        return
    assert object_uuid_bytes(table, tuple(values)) == uuid.uuid5(UUID_NAMESPACE, name).bytes


@pytest.mark.parametrize("table, pk", [("t\ud800", (1,)), ("t", ("a\udfff",)), ("t", (None,)), ("t", (float("nan"),))])
def test_fast_paths_refuse_what_the_checked_path_refuses(table: str, pk: tuple) -> None:
    from sqlite_to_weaviate.mapping.identity import object_uuid_bytes

    with pytest.raises(MappingError):
        object_uuid_bytes(table, pk)


row_values = st.one_of(st.none(), st.booleans(), st.integers(), key_values)


@given(st.dictionaries(st.text(min_size=1, max_size=8), row_values, min_size=1, max_size=6))
def test_content_hash_fast_path_matches_the_documented_formula(row: dict) -> None:
    """The hash skips per-value checks for int and str; its bytes must not change."""
    import base64
    import hashlib

    from sqlite_to_weaviate.mapping.hashing import hash_values

    def reference(value):
        if value is None or (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            return {"f": repr(value)}
        return {"b": base64.b64encode(value).decode("ascii")}

    columns = tuple(row)
    try:
        payload = json.dumps(["s2w-content-v1", "t", [[c, reference(row[c])] for c in columns]],
                             separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(MappingError):
            hash_values("t", columns, row)
        return
    assert hash_values("t", columns, row) == hashlib.sha256(payload).hexdigest()


def test_content_hash_refuses_a_lone_surrogate() -> None:
    from sqlite_to_weaviate.mapping.hashing import hash_values

    with pytest.raises(MappingError, match="lone surrogate"):
        hash_values("t", ("a",), {"a": "x\ud800"})
