"""Collection and property name derivation, including unicode and reserved names."""

from __future__ import annotations

import hashlib
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlite_to_weaviate.mapping import MappingError, collection_name, property_name
from sqlite_to_weaviate.mapping.naming import (
    COLLECTION_NAME, PROPERTY_NAME, shorten, toml_key, validate_collection_name, validate_property_name,
)


@pytest.mark.parametrize("table, expected", [
    ("conversations", "Conversations"),
    ("chat_messages", "ChatMessages"),
    ("document-chunks", "DocumentChunks"),
    ("userAccounts", "UserAccounts"),
    ("my table", "MyTable"),
    ("2024_logs", "T2024Logs"),
    ("café_menu", "CafeMenu"),
    ("Über", "Uber"),
    ("__x__", "X"),
])
def test_collection_names(table, expected) -> None:
    assert collection_name(table) == expected


@pytest.mark.parametrize("table", ["日本", "___", "", "✓"])
def test_underivable_collection_names(table) -> None:
    with pytest.raises(MappingError, match="set \\[tables\\..*\\] collection"):
        collection_name(table)


@pytest.mark.parametrize("column, expected", [
    ("created_at", "createdAt"),
    ("createdAt", "createdAt"),
    ("CreatedAt", "createdAt"),
    ("URL", "url"),
    ("user_ID", "userID"),
    ("title", "title"),
    ("2fa_enabled", "p2faEnabled"),
    ("naïve", "naive"),
    ("a b-c", "aBC"),
    ("id", "sourceId"),
    ("ID", "sourceId"),
    ("_id", "sourceId"),
    ("_additional", "additional"),  # leading underscores are separators
    ("vector", "sourceVector"),
    ("s2w_content_hash", "sourceS2wContentHash"),
    ("uuid", "uuid"),
])
def test_property_names(column, expected) -> None:
    assert property_name(column) == expected


def test_long_derived_names_are_shortened_deterministically() -> None:
    assert property_name("a" * 231) == "a" * 231
    assert collection_name("a" * 255) == "A" + "a" * 254
    long = property_name("a" * 232)
    assert long == "a" * 222 + "_" + hashlib.sha256(("a" * 232).encode()).hexdigest()[:8]
    assert len(long) == 231 and PROPERTY_NAME.fullmatch(long)
    assert property_name("a" * 232) == long  # same input, same name, in any process
    table = "monthly_sales_by_region_" * 15
    derived = "MonthlySalesByRegion" * 15
    assert collection_name(table) == derived[:246] + "_" + hashlib.sha256(derived.encode()).hexdigest()[:8]
    assert len(collection_name(table)) == 255 and COLLECTION_NAME.fullmatch(collection_name(table))
    # two names that share everything but their end stay distinct
    assert property_name("b" * 300 + "_x") != property_name("b" * 300 + "_y")
    assert collection_name("c" * 300 + "_x") != collection_name("c" * 300 + "_y")


def test_shorten() -> None:
    assert shorten("abc", 3) == "abc"
    assert shorten("abcd", 12) == "abcd"
    assert shorten("abcdefghijklm", 12) == "abc_" + hashlib.sha256(b"abcdefghijklm").hexdigest()[:8]


def test_explicit_names_past_the_limits_are_refused_with_the_limit() -> None:
    with pytest.raises(MappingError, match="is 232 characters; Weaviate allows at most 231"):
        validate_property_name("p" * 232, "column 'x'")
    with pytest.raises(MappingError, match="is 256 characters; Weaviate allows at most 255"):
        validate_collection_name("C" * 256, "table 'x'")
    assert validate_collection_name("C" * 255, "table 'x'") == "C" * 255


@pytest.mark.parametrize("column", ["日本語", "!!!", ""])
def test_underivable_property_names(column) -> None:
    with pytest.raises(MappingError, match="set its `property`"):
        property_name(column)


@pytest.mark.parametrize("name", ["id", "vector", "_additional", "1abc", "a-b", "s2wContentHash", "é"])
def test_invalid_explicit_property_names(name) -> None:
    with pytest.raises(MappingError):
        validate_property_name(name, "test")


@pytest.mark.parametrize("name", ["plain_name-1", "Order Details", 'say "hi"', "back\\slash", "été"])
def test_toml_key_round_trips(name) -> None:
    assert tomllib.loads(f"[tables.{toml_key(name)}]\nx = 1\n") == {"tables": {name: {"x": 1}}}


@given(st.text(min_size=1, max_size=300))
def test_derived_names_are_always_valid_or_refused(name: str) -> None:
    for derive, pattern in ((collection_name, COLLECTION_NAME), (property_name, PROPERTY_NAME)):
        try:
            result = derive(name)
        except MappingError:
            continue
        assert pattern.fullmatch(result)


def test_prefix_past_the_collection_limit_names_the_fix() -> None:
    import sqlite3

    from sqlite_to_weaviate.mapping import reflect_mapping
    from sqlite_to_weaviate.mapping.prefix import with_prefix

    conn = sqlite3.connect(":memory:")
    conn.execute(f'CREATE TABLE "{"x" * 250}" (id INTEGER PRIMARY KEY)')
    mapping = reflect_mapping(conn)
    assert len(with_prefix(mapping, "Ab12c").tables["x" * 250].collection) == 255
    with pytest.raises(MappingError, match=r"with prefix 'Ab12cd' would be 256 characters; Weaviate allows at most "
                                           r"255: set a shorter one in the mapping config \(\[tables\.x+\] collection"):
        with_prefix(mapping, "Ab12cd")
