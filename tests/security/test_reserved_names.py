"""Names beginning with ``_s2w_`` are not the tool's unless it created them (issue 14, item 6), real servers.

The app's own triggers and tables survive ``init``, re-``init`` and ``rollback`` whatever
their names; a name the tool needs that the app already uses is one clear error at
``init`` (exit 3) and nothing changes; an app table called ``_s2w_notes`` is migrated and
verified like any other table.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.integration.conftest import make_settings, pipeline_factory  # noqa: F401 - fixtures
from tests.security.helpers import (
    app_checksum, cli, collection_of, collections_with, make_app_db, migrate_rows, object_ids, one_error_line,
    schema_objects,
)

pytestmark = pytest.mark.integration

USER_TRIGGERS = """
CREATE TABLE audit (n INTEGER);
CREATE TRIGGER "_S2W_Audit" AFTER INSERT ON notes BEGIN INSERT INTO audit VALUES (new.id); END;
CREATE TRIGGER _s2w_touch AFTER UPDATE ON docs BEGIN INSERT INTO audit VALUES (-new.id); END;
"""


def test_the_apps_own_s2w_triggers_survive_init_and_rollback(tmp_path, make_settings, pipeline_factory):
    db = make_app_db(tmp_path / "app.db", USER_TRIGGERS)
    settings = make_settings(db)
    for _ in range(2):  # a re-run of init regenerates capture's triggers only
        out = cli(settings, "init")
        assert out.exit_code == 0, out.output
    triggers = {name for kind, name in schema_objects(db) if kind == "trigger"}
    assert {"_S2W_Audit", "_s2w_touch"} <= triggers and "_s2w_notes_ai" in triggers
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO notes VALUES (100, 'new')")
    conn.execute("UPDATE docs SET title = 'x' WHERE id = 1")
    assert {(-1,), (100,)} <= set(conn.execute("SELECT n FROM audit").fetchall())
    conn.close()
    migrate_rows(settings, pipeline_factory)
    assert cli(settings, "rollback", "--yes").exit_code == 0
    assert [(k, n) for k, n in schema_objects(db) if k == "trigger"] == [("trigger", "_S2W_Audit"),
                                                                          ("trigger", "_s2w_touch")]


@pytest.mark.parametrize("ddl", [
    "CREATE TABLE _s2w_state (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO _s2w_state VALUES (1, 'keep me');",
    # even with the tool's own layout
    "CREATE TABLE _s2w_state (key TEXT PRIMARY KEY, value TEXT); INSERT INTO _s2w_state VALUES ('mine', 'keep me');",
], ids=["other layout", "same layout"])
def test_an_app_table_with_a_name_the_tool_needs_is_refused_at_init_and_never_dropped(
        ddl, tmp_path, make_settings, weaviate_client, collection_prefix):
    db = make_app_db(tmp_path / "app.db", ddl)
    settings = make_settings(db)
    before, checksum = schema_objects(db), app_checksum(db, ["notes", "docs", "_s2w_state"])
    line = one_error_line(cli(settings, "init"))
    assert "table '_s2w_state' already exists and was not created by sqlite-to-weaviate" in line, line
    assert "rename it" in line and "nothing was changed" in line
    assert schema_objects(db) == before and collections_with(weaviate_client, collection_prefix) == []
    # migrate refuses in its read-only preflight, before the backup or anything else
    line = one_error_line(cli(settings, "migrate", "--no-backup"))
    assert "_s2w_state" in line
    # status and phase read the tool's tables only; rollback drops nothing of the app's
    assert "phase 0" in cli(settings, "phase").output
    assert cli(settings, "rollback", "--yes").exit_code == 0
    assert schema_objects(db) == before and app_checksum(db, ["notes", "docs", "_s2w_state"]) == checksum


def test_an_app_trigger_with_a_name_capture_needs_is_refused_at_init(tmp_path, make_settings):
    db = make_app_db(tmp_path / "app.db",
                     "CREATE TABLE log (n); CREATE TRIGGER _s2w_notes_ai AFTER INSERT ON notes "
                     "BEGIN INSERT INTO log VALUES (new.id); END;")
    settings = make_settings(db)
    before = schema_objects(db)
    line = one_error_line(cli(settings, "init"))
    assert "trigger '_s2w_notes_ai' on table 'notes' already exists" in line, line
    assert schema_objects(db) == before


def test_an_app_table_named_with_the_prefix_is_migrated_and_verified_like_any_other(
        tmp_path, make_settings, pipeline_factory, weaviate_client):
    db = make_app_db(tmp_path / "app.db", "CREATE TABLE _s2w_notes (id INTEGER PRIMARY KEY, body TEXT);"
                                          "INSERT INTO _s2w_notes VALUES (1, 'a'), (2, 'b'), (3, 'c');")
    settings = make_settings(db)
    out = cli(settings, "init")
    assert out.exit_code == 0 and "_s2w_notes" in out.output, out.output
    migrate_rows(settings, pipeline_factory)
    collection = collection_of(settings, "_s2w_notes")
    assert len(object_ids(weaviate_client, collection)) == 3
    verified = cli(settings, "verify", "--json")
    report = json.loads(verified.output)
    assert verified.exit_code == 0 and report["tables"]["_s2w_notes"]["scanned_rows"] == 3, verified.output
    # a row the pipeline never saw (written with capture removed) is a difference, not silence
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER _s2w__s2w_notes_ai")
    conn.execute("INSERT INTO _s2w_notes VALUES (4, 'unseen')")
    conn.close()
    missed = cli(settings, "verify", "--json")
    assert missed.exit_code == 1 and json.loads(missed.output)["tables"]["_s2w_notes"]["missing"]["total"] == 1
    checksum = app_checksum(db, ["_s2w_notes"])
    assert cli(settings, "rollback", "--yes").exit_code == 0
    assert app_checksum(db, ["_s2w_notes"]) == checksum


def test_an_install_from_before_the_registry_is_adopted_and_rolled_back_exactly(
        tmp_path, make_settings, pipeline_factory, weaviate_client, collection_prefix):
    """Upgrade path: tool tables and triggers without a registry, the old one-shot ownership record."""
    db = make_app_db(tmp_path / "app.db")
    settings = make_settings(db)
    assert cli(settings, "init").exit_code == 0
    migrate_rows(settings, pipeline_factory)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE _s2w_objects")  # what earlier versions left: no registry ...
    conn.execute("INSERT INTO _s2w_state VALUES ('migration.collections', ?)",  # ... and this record
                 (json.dumps({"preexisting": [], "at": 0}),))
    conn.execute("CREATE TRIGGER _s2w_mine AFTER DELETE ON docs BEGIN SELECT 1; END")
    conn.close()
    assert cli(settings, "status").exit_code in (0, 1)  # reads the old install without writing
    assert cli(settings, "init").exit_code == 0  # adopts it
    out = cli(settings, "rollback", "--yes")
    assert out.exit_code == 0, out.output
    assert collections_with(weaviate_client, collection_prefix) == []  # only ever held the tool's objects
    assert [(k, n) for k, n in schema_objects(db) if n.startswith("_s2w_")] == [("trigger", "_s2w_mine")]
