"""Rollback and repair touch only what the tool wrote (issue 14, items 2, 3 and 5), on the real servers.

* A collection the tool did not create is never deleted whole, however the mapping or the
  collection prefix changed since the first ``init``; it keeps the operator's objects and
  loses only the tool's (those carrying ``s2wContentHash``).
* ``verify --repair`` never deletes an object without ``s2wContentHash``: it reports it as
  foreign, and a deliberately shared collection verifies clean.
* After ``uninstall`` (phase 5) rollback refuses without ``--force``: Weaviate is the
  system of record and holds edits made after cutover.
"""

from __future__ import annotations

import json
import uuid

import pytest
from weaviate.classes.data import DataObject

from tests.integration.conftest import make_settings, pipeline_factory  # noqa: F401 - fixtures
from tests.security.helpers import (
    app_checksum, cli, collection_of, collections_with, make_app_db, migrate_rows, object_ids, one_error_line,
    operators_collection, schema_objects,
)

pytestmark = pytest.mark.integration


def test_rollback_keeps_a_collection_that_became_mapped_after_the_first_init(
        tmp_path, make_settings, pipeline_factory, weaviate_client, collection_prefix):
    db = make_app_db(tmp_path / "app.db")
    only_notes = tmp_path / "notes-only.toml"
    only_notes.write_text('include = ["notes"]\n')
    first = make_settings(db, mapping_file=only_notes)
    everything = make_settings(db)
    assert cli(first, "init").exit_code == 0
    notes = collection_of(everything, "notes")
    assert collections_with(weaviate_client, collection_prefix) == [notes]
    # the operator's own collection, made while the tool did not map its table ...
    docs, theirs = operators_collection(weaviate_client, everything, "docs")
    # ... which the tool starts to fill once the mapping includes the table
    assert cli(everything, "init").exit_code == 0
    migrate_rows(everything, pipeline_factory)
    assert len(object_ids(weaviate_client, docs)) == 15 + 1

    out = cli(everything, "rollback", "--yes")
    assert out.exit_code == 0, out.output
    assert collections_with(weaviate_client, collection_prefix) == [docs]
    assert object_ids(weaviate_client, docs) == {str(theirs)}
    assert f"deleted 15 object(s) written by the migration from pre-existing collection {docs}" in out.output


def test_rollback_after_a_prefix_change_deletes_what_it_created_under_both_and_nothing_else(
        tmp_path, make_settings, pipeline_factory, weaviate_client, collection_prefix):
    db = make_app_db(tmp_path / "app.db")
    before = make_settings(db, collection_prefix=collection_prefix + "A")
    after = make_settings(db, collection_prefix=collection_prefix + "B")
    assert cli(before, "init").exit_code == 0  # creates ...ANotes and ...ADocs
    created_first = collections_with(weaviate_client, collection_prefix + "A")
    assert len(created_first) == 2
    docs, theirs = operators_collection(weaviate_client, after, "docs")  # the operator's ...BDocs
    assert cli(after, "init").exit_code == 0  # creates ...BNotes, finds ...BDocs
    migrate_rows(after, pipeline_factory)

    preview = cli(after, "rollback", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert f"kept collection {docs}" in preview.output and f"would delete collection {docs}" not in preview.output
    out = cli(after, "rollback", "--yes")
    assert out.exit_code == 0, out.output
    # both generations the tool created are gone; the operator's collection keeps exactly its own object
    assert collections_with(weaviate_client, collection_prefix) == [docs]
    assert object_ids(weaviate_client, docs) == {str(theirs)}
    assert not [name for _, name in schema_objects(db) if name.startswith("_s2w_")]


def test_verify_repair_never_deletes_foreign_objects_and_a_shared_collection_verifies_clean(
        tmp_path, make_settings, pipeline_factory, weaviate_client):
    db = make_app_db(tmp_path / "app.db")
    settings = make_settings(db)
    notes, theirs = operators_collection(weaviate_client, settings, "notes")  # a shared, pre-existing collection
    assert cli(settings, "init").exit_code == 0
    migrate_rows(settings, pipeline_factory)

    shared = cli(settings, "verify", "--json")
    report = json.loads(shared.output)
    assert shared.exit_code == 0, shared.output  # clean: the operator's object is not a difference
    assert report["tables"]["notes"]["foreign"]["total"] == 1
    assert report["tables"]["notes"]["foreign"]["items"][0]["uuid"] == str(theirs)
    assert report["tables"]["notes"]["extra"]["total"] == 0 and report["foreign"] == 1

    # a stray object of the tool's (it carries the content hash) is an extra and is repaired away
    stray = str(uuid.uuid4())
    weaviate_client.collections.use(notes).data.insert_many(
        [DataObject(properties={"body": "stray", "s2wContentHash": "x"}, uuid=stray)])
    repaired = cli(settings, "verify", "--repair", "--json")
    report = json.loads(repaired.output)
    assert repaired.exit_code == 2, repaired.output
    assert report["tables"]["notes"]["extra"]["items"][0]["uuid"] == stray
    assert report["tables"]["notes"]["repair"]["deleted"] == 1
    assert report["tables"]["notes"]["foreign"]["total"] == 1
    assert str(theirs) in object_ids(weaviate_client, notes) and stray not in object_ids(weaviate_client, notes)
    text = cli(settings, "verify")
    assert text.exit_code == 0 and "1 foreign object(s) kept" in text.output, text.output


def test_rollback_after_uninstall_refuses_without_force(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                        collection_prefix):
    db = make_app_db(tmp_path / "app.db")
    settings = make_settings(db)
    assert cli(settings, "init").exit_code == 0
    migrate_rows(settings, pipeline_factory)
    notes = collection_of(settings, "notes")
    # after cutover the app edits an object in Weaviate: SQLite never sees that change
    edited = next(iter(weaviate_client.collections.use(notes).iterator())).uuid
    weaviate_client.collections.use(notes).data.update(uuid=edited, properties={"body": "edited after cutover"})
    done = cli(settings, "uninstall", "--yes")
    assert done.exit_code == 0, done.output
    assert "phase 5" in cli(settings, "phase").output
    checksum = app_checksum(db, ["notes", "docs"])

    for args in (["rollback", "--yes"], ["rollback"], ["rollback", "--dry-run"]):
        line = one_error_line(cli(settings, *args))
        assert "uninstalled after cutover (phase 5)" in line and "--force" in line, line
    assert len(object_ids(weaviate_client, notes)) == 20
    body = weaviate_client.collections.use(notes).query.fetch_object_by_id(edited).properties["body"]
    assert body == "edited after cutover"

    forced = cli(settings, "rollback", "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert collections_with(weaviate_client, collection_prefix) == []
    assert not [name for _, name in schema_objects(db) if name.startswith("_s2w_")]
    assert app_checksum(db, ["notes", "docs"]) == checksum
    assert "phase 0" in cli(settings, "phase").output
