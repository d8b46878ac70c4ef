"""Collection and property name derivation, including unicode and reserved names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlite_to_weaviate.mapping import MappingError, collection_name, property_name
from sqlite_to_weaviate.mapping.naming import COLLECTION_NAME, PROPERTY_NAME, validate_property_name


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


def test_property_name_too_long() -> None:
    with pytest.raises(MappingError, match="longer than 231"):
        property_name("a" * 232)
    assert property_name("a" * 231) == "a" * 231


@pytest.mark.parametrize("column", ["日本語", "!!!", ""])
def test_underivable_property_names(column) -> None:
    with pytest.raises(MappingError, match="set its `property`"):
        property_name(column)


@pytest.mark.parametrize("name", ["id", "vector", "_additional", "1abc", "a-b", "s2wContentHash", "é"])
def test_invalid_explicit_property_names(name) -> None:
    with pytest.raises(MappingError):
        validate_property_name(name, "test")


@given(st.text(min_size=1, max_size=40))
def test_derived_names_are_always_valid_or_refused(name: str) -> None:
    for derive, pattern in ((collection_name, COLLECTION_NAME), (property_name, PROPERTY_NAME)):
        try:
            result = derive(name)
        except MappingError:
            continue
        assert pattern.fullmatch(result)
