"""Refusals by column and reason, the config writer, the keyset row reader and suggest-mapping (SQLite only)."""

from __future__ import annotations

import dataclasses
import json
import pickle
import sqlite3
from pathlib import Path

import pytest

from sqlite_to_weaviate.backfill.dry_run import scan_conversions
from sqlite_to_weaviate.mapping import (
    ConversionError, DataType, encode_vector, parse_mapping_config, reflect_mapping, seed_preset_toml,
)
from sqlite_to_weaviate.mapping.convert import BEYOND_2_53, convert_value
from sqlite_to_weaviate.mapping.config_writer import render_mapping_config
from sqlite_to_weaviate.mapping.errors import ValueConversionError
from sqlite_to_weaviate.mapping.refusals import TableRefusals, refusals_of_row
from sqlite_to_weaviate.mapping.rows import iter_row_pages
from sqlite_to_weaviate.mapping.suggest import suggest_mapping

BIG = 2**53 + 1


def db(sql: str, rows: dict[str, list[tuple]] | None = None) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(sql)
    for table, values in (rows or {}).items():
        marks = ", ".join("?" * len(values[0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    return conn


# ---- kinds and fixes ---------------------------------------------------------------

@pytest.mark.parametrize("value, data_type, kind, fix", [
    (BIG, DataType.INT, BEYOND_2_53, "text"),
    (-(2**63), DataType.INT, BEYOND_2_53, "text"),
    (float(2**60), DataType.INT, BEYOND_2_53, "text"),
    (BIG, DataType.NUMBER, BEYOND_2_53, "text"),
    (1.5, DataType.INT, "fractional value", "number"),
    ("abc", DataType.INT, "text that is not an integer", "text"),
    (b"\xff\xfe", DataType.TEXT, "BLOB that is not UTF-8 text", "blob"),
    (2, DataType.BOOLEAN, "not 0 or 1", "int"),
    ("yes", DataType.BOOLEAN, "not a boolean", "text"),
    ("01/02/2024", DataType.DATE, "not an ISO 8601 date", "text"),
    (float("inf"), DataType.NUMBER, "not finite (NaN or infinity)", None),
    ("[1]", DataType.OBJECT, "JSON Weaviate cannot hold as an object", "text"),
])
def test_each_refusal_has_a_kind_and_the_type_that_keeps_it(value, data_type, kind, fix) -> None:
    with pytest.raises(ValueConversionError) as info:
        convert_value(value, data_type)
    assert (info.value.kind, info.value.fix) == (kind, fix)
    if fix is not None:
        convert_value(value, DataType(fix))  # the suggested type really keeps the value


def test_errors_keep_kind_and_fix_through_pickle() -> None:
    value_error = pickle.loads(pickle.dumps(ValueConversionError("m", kind="k", fix="text")))
    assert (str(value_error), value_error.kind, value_error.fix) == ("m", "k", "text")
    row_error = pickle.loads(pickle.dumps(ConversionError("t", (1,), "c", "why", "k", "text")))
    assert (row_error.table, row_error.pk, row_error.column, row_error.kind, row_error.fix) == ("t", (1,), "c", "k", "text")


# ---- refusals of a row, tallies ------------------------------------------------------

SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);"


def test_refusals_of_row_lists_every_refused_column() -> None:
    table = reflect_mapping(db(SCHEMA)).table("t")
    assert refusals_of_row(table, {"id": 1, "a": 5, "b": "x", "c": 1.0}) == []
    errors = refusals_of_row(table, {"id": 1, "a": BIG, "b": b"\xff", "c": float("inf")})
    assert [(e.column, e.kind) for e in errors] == [
        ("a", BEYOND_2_53), ("b", "BLOB that is not UTF-8 text"), ("c", "not finite (NaN or infinity)")]


def test_tally_counts_rows_once_and_groups_by_column_and_reason() -> None:
    table = reflect_mapping(db(SCHEMA)).table("t")
    tally = TableRefusals("t")
    for i, row in enumerate([{"a": BIG, "b": b"\xff"}, {"a": -(2**63)}, {"a": 1.5}]):
        tally.add_errors((i,), refusals_of_row(table, {"id": i, "a": None, "b": None, "c": None, **row}))
    assert tally.rows == 3
    groups = {(g.column, g.kind): g.rows for g in tally.groups.values()}
    assert groups == {("a", BEYOND_2_53): 2, ("b", "BLOB that is not UTF-8 text"): 1, ("a", "fractional value"): 1}
    assert tally.lines()[0].startswith('a: 2 row(s) beyond ±2^53 → type = "text" (e.g. key [0]: integer')
    # a column refused for "fractional" (number) and "beyond ±2^53" (text): text holds both
    assert tally.fixes() == {"a": "text", "b": "blob"}
    assert tally.toml_snippet() == '[tables.t.columns.a]\ntype = "text"\n[tables.t.columns.b]\ntype = "blob"'
    data = json.loads(json.dumps(tally.to_json()))
    assert data["rows"] == 3 and data["reasons"][0]["fix"] == 'type = "text"' and data["lines"] == tally.lines()


def test_scan_conversions_counts_exactly_including_null_keys_and_pages() -> None:
    conn = db("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER);",
              {"t": [(f"k{i:03d}", BIG if i % 3 == 0 else i) for i in range(50)] + [(None, 1), (None, 2)]})
    table = reflect_mapping(conn).table("t")
    pages = list(iter_row_pages(conn, table, page_size=7))
    assert sum(len(p) for p in pages) == 52 and max(len(p) for p in pages) == 7
    seen = []
    scan = scan_conversions(conn, table, page_size=7, progress=seen.append)
    assert scan.rows == 52 and seen[-1] == 52
    assert scan.refusals.rows == 17 + 2
    kinds = {g.kind: g.rows for g in scan.refusals.groups.values()}
    assert kinds == {BEYOND_2_53: 17, "NULL primary-key value": 2}


# ---- config writer -------------------------------------------------------------------

def _docs_example() -> str:
    text = (Path(__file__).parents[2] / "docs" / "mapping.md").read_text()
    return text.split("## Config file reference (TOML)")[1].split("```toml\n")[1].split("```")[0]


@pytest.mark.parametrize("source", [seed_preset_toml(), _docs_example(),
                                    '[tables."odd name".columns."a b"]\ntype = "text"\ndefault = "q\\"uote"\n'])
def test_rendered_config_parses_back_to_the_same_config(source: str) -> None:
    config = parse_mapping_config(source)
    text = render_mapping_config(config, comments={("tables", "messages"): ["why " * 40]},
                                 trailing={("tables", "messages"): ['# type = "object"']}, header=["top"])
    assert dataclasses.replace(parse_mapping_config(text), source=config.source) == config
    assert all(len(line) <= 100 for line in text.splitlines() if line.startswith("#"))


# ---- suggest-mapping -----------------------------------------------------------------

def _suggest_db() -> sqlite3.Connection:
    vec = encode_vector
    return db(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, big INTEGER, ratio INTEGER, seen_at TEXT, note TEXT,"
        " emb BLOB, meta JSON, raw TEXT, pinned INTEGER, weird REAL);"
        "CREATE TABLE other (id TEXT PRIMARY KEY, label TEXT);",
        {"items": [(i, BIG * (-1) ** i if i % 2 else i, i + 0.5 if i == 3 else i,
                    f"2024-05-0{1 + i % 9} 10:00:00" if i % 4 else f"2024-05-0{1 + i % 9}T10:00:00Z",
                    f"note {i}", vec([0.1 * i, 0.2, 0.3, -0.4]) if i != 5 else None,
                    json.dumps({"lang": "en", "tokens": i}), b"\xff\xfe" if i == 7 else f"r{i}", i,
                    float("inf") if i == 8 else 1.0)
                   for i in range(1, 21)],
         "other": [("a", "x"), ("b", "y")]})


def test_suggest_mapping_keeps_every_value_and_says_why() -> None:
    conn = _suggest_db()
    base = parse_mapping_config('[tables.items.columns.pinned]\ntype = "int"\nvectorize = false\n')
    suggestion = suggest_mapping(conn, base, source="test.db")
    text = suggestion.render()
    config = parse_mapping_config(text)
    columns = config.tables["items"].columns
    assert columns["big"].type is DataType.TEXT          # integers beyond ±2^53
    assert columns["ratio"].type is DataType.NUMBER      # one fractional value in an INTEGER column
    assert columns["raw"].type is DataType.BLOB          # one BLOB that is not UTF-8 in a TEXT column
    assert columns["seen_at"].type is DataType.DATE      # ISO 8601 text, with and without a zone
    assert "note" not in columns                         # prose stays text: nothing to say
    assert columns["pinned"] == base.tables["items"].columns["pinned"]   # the user's explicit settings are kept
    assert config.tables["items"].vector_column == "emb"  # float32 arrays of one length
    assert columns["meta"].type is None and '# type = "object"' in text and '# nested = { lang = "text", tokens = "int" }' in text
    assert "weird" in text and "no type converts every value" in text  # infinity: reported, not "fixed"
    assert "10 of 20 non-NULL value(s) are refused as type \"int\" (10 beyond ±2^53" in text
    # every row the old mapping refused is kept by the new one, except the row with infinity
    assert (suggestion.refused_before, suggestion.refused_after) == (11, 1)   # odd ids (big) + the infinity

    def refused(mapping_config) -> int:
        table = reflect_mapping(conn, mapping_config).table("items")
        return sum(1 for r in conn.execute(table.select_sql())
                   if refusals_of_row(table, dict(zip(table.source_columns, r))))

    assert (refused(base), refused(config)) == (11, 1)
    assert "other" not in config.tables   # nothing to say about it


def test_suggest_mapping_without_anything_to_change() -> None:
    conn = db("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);", {"t": [(1, "a"), (2, "b")]})
    suggestion = suggest_mapping(conn)
    assert suggestion.notes == [] and suggestion.refused_before == suggestion.refused_after == 0
    assert "needs no change" in suggestion.render()
    assert parse_mapping_config(suggestion.render()).tables == {}


def test_backfill_dry_run_reports_progress_refusals_and_writes_nothing(tmp_path: Path) -> None:
    import io

    from sqlite_to_weaviate.backfill import BackfillOptions, ProgressDisplay, backfill
    from sqlite_to_weaviate.settings import Settings

    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, BIG if i % 10 == 0 else i) for i in range(2500)])
    conn.commit()
    conn.close()
    before = path.read_bytes()
    events, stream = [], io.StringIO()
    display = ProgressDisplay(stream=stream, tty=True, callback=events.append, activity="dry run")
    report = backfill(Settings(sqlite_path=path), BackfillOptions(dry_run=True, page_size=1000), display=display)
    display.close()
    plan = report.tables["t"].plan
    assert (plan.rows, plan.scanned_rows, plan.refused) == (2500, 2500, 250)
    assert plan.refusal_lines[0].startswith('n: 250 row(s) beyond ±2^53 → type = "text"')
    assert plan.refusals["mapping_fix"] == '[tables.t.columns.n]\ntype = "text"'
    assert plan.convert_rows_per_second and plan.estimated_seconds is not None   # measured, not a constant
    assert [e.rows_done for e in events] == [1000, 2000, 2500, 2500] and events[-1].done
    assert "2.50k/2.50k" in stream.getvalue()     # the tqdm bar
    assert path.read_bytes() == before
