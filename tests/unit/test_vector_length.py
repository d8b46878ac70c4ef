"""A vector column's length: declared or sampled, and every other length refused before Weaviate."""

from __future__ import annotations

import sqlite3

import pytest

from sqlite_to_weaviate.mapping import ConversionError, MappingError, encode_vector, parse_mapping_config, reflect_mapping
from sqlite_to_weaviate.mapping.convert import VECTOR_LENGTH, decode_vector
from sqlite_to_weaviate.mapping.errors import ValueConversionError
from sqlite_to_weaviate.mapping.refusals import fix_text, refusals_of_row
from sqlite_to_weaviate.mapping.vector_length import SAMPLE_ROWS, majority_length

SCHEMA = "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT, embedding BLOB);"


def docs(vectors: list[list[float] | None]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO docs VALUES (?, 'x', ?)",
                     [(i, None if v is None else encode_vector(v)) for i, v in enumerate(vectors)])
    return conn


def row(conn: sqlite3.Connection, key: int) -> dict:
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM docs WHERE id = ?", (key,)).fetchone())
    finally:
        conn.row_factory = None


CONFIG = '[tables.docs]\nvector_column = "embedding"\n'


def test_the_converter_refuses_another_length_with_its_own_kind():
    assert decode_vector(encode_vector([1.0, 2.0]), 2) == [1.0, 2.0]
    assert decode_vector(None, 2) is None
    with pytest.raises(ValueConversionError) as info:
        decode_vector(encode_vector([1.0, 2.0, 3.0]), 2)
    assert info.value.kind == VECTOR_LENGTH and "3 dimensions; this column's vectors have 2" in str(info.value)
    assert "vector_dimensions = N" in fix_text(None, VECTOR_LENGTH)


@pytest.mark.parametrize("lengths, expected", [
    ([128] * 5 + [8], 32),            # a clear majority of 32-float vectors
    ([128, 128], None),               # too few agree to trust
    ([128] * 3 + [8] * 3, None),      # no majority
    ([], None),                       # no vectors yet
    ([128] * 4 + [7], 32),            # a malformed BLOB counts against, never for, a length
])
def test_majority_length(lengths, expected):
    assert majority_length(lengths) == expected


def test_a_sampled_length_refuses_the_odd_vector_wherever_it_sits():
    """The bad row comes first (as a live row can, ahead of the history): it is refused, not
    left to fix the index length of an empty collection."""
    conn = docs([[0.5, 0.5]] + [[float(i), 1.0, 2.0, 3.0] for i in range(1, 6)] + [None])
    table = reflect_mapping(conn, parse_mapping_config(CONFIG)).table("docs")
    assert table.vector_length("embedding") == 4
    with pytest.raises(ConversionError) as info:
        table.to_object(row(conn, 0))
    assert (info.value.kind, info.value.column) == (VECTOR_LENGTH, "embedding")
    assert table.to_object(row(conn, 1)).vector == [1.0, 1.0, 2.0, 3.0]
    assert table.to_object(row(conn, 6)).vector is None  # NULL: no vector, nothing to check
    assert [e.kind for e in refusals_of_row(table, row(conn, 0))] == [VECTOR_LENGTH]


def test_a_declared_length_wins_over_the_rows_and_an_unknown_one_is_not_checked():
    conn = docs([[0.5, 0.5]] * 5)
    declared = reflect_mapping(conn, parse_mapping_config(CONFIG + "vector_dimensions = 3\n")).table("docs")
    assert declared.vector_length("embedding") == 3
    with pytest.raises(ConversionError):
        declared.to_object(row(conn, 0))
    empty = docs([])
    assert reflect_mapping(empty, parse_mapping_config(CONFIG)).table("docs").vector_length("embedding") is None


def test_named_vectors_take_dimensions_per_vector():
    conn = sqlite3.connect(":memory:")
    conn.executescript("CREATE TABLE docs (id INTEGER PRIMARY KEY, a BLOB, b BLOB);")
    conn.execute("INSERT INTO docs VALUES (1, ?, ?)", (encode_vector([1.0] * 3), encode_vector([1.0] * 2)))
    table = reflect_mapping(conn, parse_mapping_config(
        '[tables.docs.vectors.first]\ncolumn = "a"\ndimensions = 3\n'
        '[tables.docs.vectors.second]\ncolumn = "b"\ndimensions = 5\n')).table("docs")
    assert (table.vector_length("a"), table.vector_length("b")) == (3, 5)
    with pytest.raises(ConversionError) as info:
        table.to_object({"id": 1, "a": encode_vector([1.0] * 3), "b": encode_vector([1.0] * 2)})
    assert info.value.column == "b"


@pytest.mark.parametrize("text, message", [
    ('[tables.docs]\nvector_dimensions = 3\n', "vector_dimensions without vector_column"),
    (CONFIG + "vector_dimensions = 0\n", "0 dimensions"),
    (CONFIG + "vector_dimensions = 'many'\n", "vector_dimensions"),
    ('[embedders.m]\nkind = "local"\nmodel = "all-MiniLM-L6-v2"\n[tables.docs.vectors.v]\nembedder = "m"\ndimensions = 3\n',
     "dimensions applies to vectors read from a column"),
])
def test_bad_dimensions_are_named(text, message):
    with pytest.raises(MappingError) as info:
        parse_mapping_config(text)
    assert message in str(info.value)


def test_the_sample_is_bounded():
    conn = docs([None] * (SAMPLE_ROWS + 10) + [[1.0, 2.0]] * 5)  # vectors only past the sample
    assert reflect_mapping(conn, parse_mapping_config(CONFIG)).table("docs").vector_length("embedding") is None
