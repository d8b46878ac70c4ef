"""The registry of what the tool created: the app's ``_s2w_*`` objects are never taken, dropped or skipped."""

from __future__ import annotations

import sqlite3

import pytest

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.capture.tables import user_tables
from sqlite_to_weaviate.store import registry as tool_objects


def db(sql: str = "") -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);" + sql)
    return conn


def names(conn: sqlite3.Connection, kind: str) -> list[str]:
    """Schema objects of ``kind``; SQLite's own ``sqlite_sequence`` (it stays once created) left out."""
    return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))
                  if r[0] != "sqlite_sequence")


def test_install_records_exactly_what_it_creates_and_uninstall_drops_only_that():
    conn = db("""
        CREATE TABLE audit (n INTEGER);
        CREATE TRIGGER "_S2W_Audit" AFTER INSERT ON notes BEGIN INSERT INTO audit VALUES (new.id); END;
        CREATE TRIGGER _s2w_touch AFTER UPDATE ON notes BEGIN INSERT INTO audit VALUES (-new.id); END;
        CREATE TABLE _s2w_notes (id INTEGER PRIMARY KEY, body TEXT);
        CREATE INDEX _s2w_notes_body ON _s2w_notes(body);
    """)
    capture.install(conn, ["notes"])
    capture.install(conn, ["notes"])  # a re-install drops and re-creates only capture's triggers
    ours = set(tool_objects.registered(conn, tool_objects.TRIGGER).values())
    assert ours == {"_s2w_notes_ai", "_s2w_notes_au", "_s2w_notes_ad"}
    assert {"_S2W_Audit", "_s2w_touch"} <= set(names(conn, "trigger"))
    assert sorted(tool_objects.registered(conn, tool_objects.TABLE).values()) == [
        "_s2w_bulk", "_s2w_capture", "_s2w_context", "_s2w_objects", "_s2w_outbox", "_s2w_state"]
    assert user_tables(conn) == ["_s2w_notes", "audit", "notes"]
    conn.execute("INSERT INTO notes VALUES (1, 'a')")
    assert conn.execute("SELECT n FROM audit").fetchall() == [(1,)]
    capture.uninstall(conn)
    assert names(conn, "trigger") == ["_S2W_Audit", "_s2w_touch"]
    assert names(conn, "table") == ["_s2w_notes", "audit", "notes"]
    assert names(conn, "index") == ["_s2w_notes_body"]


@pytest.mark.parametrize("ddl, kind", [
    ("CREATE TABLE _s2w_state (id INTEGER PRIMARY KEY, note TEXT)", "table"),
    ("CREATE TABLE _S2W_STATE (key TEXT PRIMARY KEY, value TEXT)", "table"),  # even our layout: not ours
    ("CREATE TABLE _s2w_objects (type TEXT, name TEXT, created_at REAL)", "table"),
    ("CREATE INDEX _s2w_outbox ON notes(body)", "index"),
    ("CREATE VIEW _s2w_capture AS SELECT 1", "view"),
    ("CREATE TRIGGER _s2w_notes_ad AFTER DELETE ON notes BEGIN SELECT 1; END", "trigger"),
])
def test_a_name_capture_needs_held_by_the_app_is_refused_and_nothing_changes(ddl, kind):
    conn = db(ddl)
    before = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    with pytest.raises(tool_objects.NameTaken, match=f"{kind} .* was not created by sqlite-to-weaviate") as info:
        capture.install(conn, ["notes"])
    assert "nothing was changed" in str(info.value) and "\n" not in str(info.value)
    assert conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == before
    capture.uninstall(conn)
    assert conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == before


def test_a_pre_registry_install_is_adopted_with_its_triggers_and_nothing_else():
    conn = db("CREATE TABLE keep (id INTEGER PRIMARY KEY)")
    capture.install(conn, ["notes"])
    conn.execute("DROP TABLE _s2w_objects")  # what an install made before the registry existed looks like
    conn.execute("CREATE TRIGGER _s2w_mine AFTER INSERT ON keep BEGIN SELECT 1; END")
    assert tool_objects.present(conn)
    assert "_s2w_notes_ai" in tool_objects.registered(conn, tool_objects.TRIGGER).values()  # read-only view
    assert "_s2w_mine" not in tool_objects.registered(conn, tool_objects.TRIGGER).values()
    capture.install(conn, ["notes", "keep"])  # creates the registry, adopting the install
    assert tool_objects.is_registered(conn, tool_objects.TABLE, "_s2w_outbox")
    capture.uninstall(conn)
    assert names(conn, "trigger") == ["_s2w_mine"]
    assert names(conn, "table") == ["keep", "notes"]


def test_without_an_install_the_prefix_means_nothing():
    conn = db("CREATE TABLE _s2w_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT, op TEXT)")
    assert not tool_objects.present(conn)
    assert tool_objects.tool_tables(conn) == set()
    assert not tool_objects.has_table(conn, "_s2w_outbox")
    capture.uninstall(conn)
    assert names(conn, "table") == ["_s2w_outbox", "notes"]


def test_collections_and_the_cutover_milestone_outlive_uninstall():
    conn = db()
    capture.install(conn, ["notes"])
    conn.execute("BEGIN IMMEDIATE")
    tool_objects.record(conn, tool_objects.COLLECTION, "Notes")
    conn.execute("COMMIT")
    capture.uninstall(conn)
    assert tool_objects.collections(conn) == ["Notes"]
    assert names(conn, "table") == ["_s2w_objects", "notes"]
    conn.execute("BEGIN IMMEDIATE")
    assert tool_objects.drop_registry(conn, only_if_empty=True) is False
    assert tool_objects.drop_registry(conn, only_if_empty=False) is True
    conn.execute("COMMIT")
    assert names(conn, "table") == ["notes"]
