"""The TOML config file: parsing, and errors that name the file, key path and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlite_to_weaviate.mapping import DataType, MappingError, load_mapping_config, parse_mapping_config, seed_preset_config
from sqlite_to_weaviate.mapping.presets import seed_preset_toml

FULL = """
include = ["messages", "conversations"]
exclude = []
vectorizer = "none"
naive_timezone = "Europe/Paris"

[metadata]
constants = { migrated_from_sqlite = true, batch = 3, ratio = 0.5, source = "app" }
original_id = "originalId"
migration_timestamp = "migrationTimestamp"

[tables.messages]
collection = "Message"
exclude_columns = ["secret"]
vectorizer = "text2vec-transformers"
tenant_column = "tenant"
[tables.messages.columns.body]
property = "content"
type = "text"
vectorize = true
filterable = false
searchable = true
default = ""
[tables.messages.columns.meta]
type = "object"
nested = { lang = "text", n = "int" }
[tables.messages.columns.sent]
type = "date"
date_unit = "ms"
naive_timezone = "+02:00"
[tables.messages.columns.payload]
json_as = "text"
[tables.messages.columns.legacy]
exclude = true
[tables.messages.vectors.body]
column = "body_vec"
[[tables.messages.references]]
column = "conversation_id"
property = "conversation"
target = "conversations"
"""


def test_full_config_parses(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(FULL)
    config = load_mapping_config(path)
    assert config.source == str(path)
    assert config.include == ("messages", "conversations")
    assert config.vectorizer is None
    assert config.naive_timezone == "Europe/Paris"
    assert config.metadata.constants == (("migrated_from_sqlite", True), ("batch", 3), ("ratio", 0.5), ("source", "app"))
    table = config.tables["messages"]
    assert table.collection == "Message"
    assert table.vectorizer == "text2vec-transformers"
    assert table.vectors == (("body", "body_vec"),)
    assert table.references[0].target == "conversations"
    body = table.columns["body"]
    assert (body.property, body.type, body.vectorize, body.filterable, body.default) == ("content", DataType.TEXT, True, False, "")
    assert table.columns["meta"].nested == (("lang", DataType.TEXT), ("n", DataType.INT))
    assert table.columns["sent"].date_unit == "ms"
    assert table.columns["payload"].type is DataType.TEXT
    assert table.columns["legacy"].exclude


def test_preset_parses() -> None:
    config = seed_preset_config()
    assert set(config.tables) == {"conversations", "messages", "documents", "document_chunks",
                                  "agent_interactions", "multimodal_content"}
    assert "Untitled Conversation" in seed_preset_toml()


@pytest.mark.parametrize("text, message", [
    ("[tables.messages.columns.body]\ntpye = \"text\"\n",
     r"<t>:2: tables\.messages\.columns\.body\.tpye: unknown key — did you mean 'type'\? valid keys: .*property"),
    ("vectoriser = \"none\"\n", r"<t>:1: vectoriser: unknown key — did you mean 'vectorizer'\?"),
    ("[tables.m]\ncolection = \"M\"\n", r"tables\.m\.colection: unknown key — did you mean 'collection'"),
    ("[tables.m]\ncollection = \"message\"\n", r"tables\.m\.collection: invalid collection name 'message'"),
    ("[tables.m.columns.c]\nproperty = \"id\"\n", r"tables\.m\.columns\.c\.property: .*reserved"),
    ("[tables.m.columns.c]\nproperty = \"bad-name\"\n", r"invalid property name 'bad-name'"),
    ("[tables.m.columns.c]\ntype = \"integer\"\n", r"tables\.m\.columns\.c\.type: invalid value 'integer' — did you mean 'int'\?"),
    ("[tables.m.columns.c]\nvectorize = \"yes\"\n", r"tables\.m\.columns\.c\.vectorize: expected bool, got str"),
    ("[tables.m.columns.c]\ndate_unit = \"us\"\n", r"date_unit: invalid value 'us'.*valid values: s, ms"),
    ("[tables.m.columns.c]\ntype = \"object\"\n", r"an object column needs its nested properties"),
    ("[tables.m.columns.c]\nnested = { a = \"text\" }\n", r"nested properties only apply"),
    ("[tables.m.columns.c]\ntype = \"object\"\nnested = { a = \"list\" }\n", r"invalid nested type 'list'"),
    ("[tables.m.columns.c]\ntype = \"int\"\njson_as = \"object\"\n", r"contradicts"),
    ("[tables.m.columns.c]\nnaive_timezone = \"Nowhere/City\"\n", r"unknown time zone"),
    ("[tables.m.columns.c]\ndefault = [1]\n", r"default must be"),
    ("[tables.m]\nvector_column = \"v\"\n[tables.m.vectors.a]\ncolumn = \"w\"\n", r"both vector_column and vectors"),
    ("[tables.m.vectors.a]\ncol = \"w\"\n", r"tables\.m\.vectors\.a\.col: unknown key"),
    (f"[tables.m.vectors.{'v' * 231}]\ncolumn = \"w\"\n", r"invalid vector name .*at most 230 characters"),
    (f"[tables.m]\ncollection = \"{'C' * 256}\"\n", r"is 256 characters; Weaviate allows at most 255"),
    (f"[tables.m.columns.c]\nproperty = \"{'p' * 232}\"\n", r"is 232 characters; Weaviate allows at most 231"),
    ("[[tables.m.references]]\ncolumn = \"c\"\n", r"tables\.m\.references\[0\]: missing keys \['property', 'target'\]"),
    ("[tables.m]\nvectorizer = \"Text2Vec!\"\n", r"invalid vectorizer"),
    ("[metadata]\nconstants = { x = [1] }\n", r"metadata\.constants\.x: metadata constant"),
    ("[metadata]\nconstants = { big = 9007199254740993 }\n", r"beyond"),
    ("[metadata]\noriginal_id = \"a\"\nmigration_timestamp = \"a\"\n", r"used twice"),
    ("include = \"m\"\n", r"include: expected list"),
    ("include = [1]\n", r"include: expected a list of strings"),
    ("tables = 3\n", r"tables: expected dict"),
])
def test_config_errors(text: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping_config(text, "<t>")


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[tables.m]\ncollection = \n")
    with pytest.raises(MappingError, match=rf"{path}: invalid TOML: .*line 2"):
        load_mapping_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read mapping config"):
        load_mapping_config(tmp_path / "nope.toml")
