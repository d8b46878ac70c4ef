"""Which length a vector column's vectors have: declared in the mapping, else read off the rows.

Weaviate fixes a vector index to the length of the first vector it receives and refuses
every other length after that. So a single malformed vector that reaches an empty
collection first (with live changes going ahead of the history, a live row can) would make
every correct vector after it a dead letter. The converter therefore checks each vector
against the column's length before anything is sent (``TableMapping.decode_vector``), and
a wrong one is refused like any other bad value: dead-lettered with its reason, counted as
refused by the verifier.

The length is the mapping's ``vector_dimensions`` (``dimensions`` of a named vector) when
declared. Otherwise it is the most common length among the first :data:`SAMPLE_ROWS` rows
of the table that hold a BLOB there, needing at least :data:`MIN_AGREEING` of them to agree
and a majority: a table with no vectors yet, or no clear majority, leaves the length
unknown and unchecked (Weaviate's own rule then applies), and ``suggest-mapping`` /
docs/mapping.md tell the user to declare it. The sample is bounded, so reading it costs the
same on a table of ten rows or ten million.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

SAMPLE_ROWS = 10_000
MIN_AGREEING = 3


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sampled_vector_length(conn: sqlite3.Connection, table: str, column: str) -> int | None:
    """The dimensions most vectors of ``column`` have in the table's first rows, or None."""
    # typeof() and length() straight on the column read only each value's header; through a
    # subquery SQLite would load every vector in full
    rows = conn.execute(f"SELECT typeof({_quoted(column)}), length({_quoted(column)}) FROM {_quoted(table)} LIMIT ?",
                        (SAMPLE_ROWS,)).fetchall()
    return majority_length([n for kind, n in rows if kind == "blob"])


def majority_length(byte_lengths: list[int]) -> int | None:
    """Dimensions (float32 count) held by a majority of at least MIN_AGREEING vectors, or None."""
    counts = Counter(n // 4 for n in byte_lengths if n and n % 4 == 0)
    if not counts:
        return None
    length, agreeing = counts.most_common(1)[0]
    if agreeing < MIN_AGREEING or agreeing * 2 <= len(byte_lengths):
        return None
    return length
