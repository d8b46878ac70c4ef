"""The one-shot migration end to end on the example chat database, all servers real.

Python API and the ``migrate`` command; dry run writes nothing; backup while the app
writes; a forced verification failure rolls back (app data untouched); phases and the
readiness gate; resuming after a crash; rollback keeps a pre-existing collection's objects.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from examples.chat_app.seed import build_sample_database
from sqlite_to_weaviate.mapping import seed_preset_toml
from sqlite_to_weaviate.operate import MigrationHooks, Phase, create_migration_config, readiness, run_migration
from sqlite_to_weaviate.cli.operate import migrate_cmd, phase_cmd, ready_cmd, rollback_cmd, uninstall_cmd
from sqlite_to_weaviate.operate.rollback import namespace_keys
from sqlite_to_weaviate.operate.verification import run_verification

TUNING = dict(lease_seconds=3.0, job_timeout=15, retry_delay=0.2, backoff_max=2.0, poll_interval=0.3, partitions=4)


@pytest.fixture
def chat_db(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "chat.db"
    build_sample_database(db, conversations=25, seed=3)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(seed_preset_toml())
    return db, mapping


@pytest.fixture
def config_kwargs(chat_db, weaviate_url, redis_url, redis_namespace, collection_prefix, tmp_path, weaviate_client,
                  redis_client):
    db, mapping = chat_db
    (tmp_path / "backups").mkdir()
    return dict(sqlite_url=str(db), weaviate_url=weaviate_url, redis_url=redis_url, namespace=redis_namespace,
                collection_prefix=collection_prefix, mapping_file=str(mapping), backup_path=str(tmp_path / "backups"),
                settings_overrides=TUNING, timeout_s=180.0, validation_sample_size=50)


def cli_args(kw: dict) -> list[str]:
    return ["--sqlite-url", kw["sqlite_url"], "--weaviate-url", kw["weaviate_url"], "--redis-url", kw["redis_url"],
            "--namespace", kw["namespace"], "--collection-prefix", kw["collection_prefix"],
            "--mapping", kw["mapping_file"], "--lease-seconds", "3", "--job-timeout", "15", "--retry-delay", "0.2",
            "--backoff-max", "2", "--poll-interval", "0.3", "--partitions", "4"]


def app_checksum(db: Path) -> str:
    """sha256 over every row of every app table (tool tables excluded)."""
    conn = sqlite3.connect(db)
    digest = hashlib.sha256()
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '\\_s2w\\_%' ESCAPE '\\' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for t in tables:
            digest.update(t.encode())
            for row in sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{t}"')):
                digest.update(row.encode())
    finally:
        conn.close()
    return digest.hexdigest()


def tool_objects(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '\\_s2w\\_%' ESCAPE '\\'")]
    finally:
        conn.close()


def our_collections(client, prefix: str) -> list[str]:
    return sorted(n for n in client.collections.list_all(simple=True) if n.startswith(prefix))


def test_python_api_migrates_the_chat_database(config_kwargs, weaviate_client, chat_db):
    db, _ = chat_db
    config = create_migration_config(environ={}, **config_kwargs)
    result = run_migration(config)
    assert result.success, result.summary()
    conn = sqlite3.connect(db)
    rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
               for t in ("conversations", "messages", "documents", "document_chunks", "agent_interactions",
                         "multimodal_content"))
    assert result.migrated_records == rows > 100
    assert set(result.collections) == set(our_collections(weaviate_client, config.collection_prefix))
    assert result.verification["clean"] and result.phase == Phase.VERIFIED
    assert not result.warnings, result.warnings  # the field-level sample ran
    assert {"preflight", "backup", "schema", "backfill", "drain", "verify"} <= set(result.timings)
    backup = Path(result.backup_path)
    assert backup.parent == Path(config_kwargs["backup_path"])
    assert sqlite3.connect(backup).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    settings = config.to_settings()
    assert_same_content(settings)
    gate = readiness(settings)
    assert gate.ready, gate.reasons


def test_dry_run_writes_nothing_anywhere(config_kwargs, weaviate_client, redis_client, chat_db):
    db, _ = chat_db
    before = db.read_bytes()
    files_before = sorted(p.name for p in db.parent.iterdir())
    result = CliRunner().invoke(migrate_cmd, cli_args(config_kwargs) + ["--dry-run", "--backup"])
    assert result.exit_code == 0, result.output
    assert "conversations -> " in result.output and "nothing was written" in result.output
    assert "estimated" in result.output
    assert db.read_bytes() == before
    # no backup, no lock file; a read-only connection to a WAL database may leave SQLite's own
    # (empty) -wal / -shm index files, which hold no data
    sqlite_own = {db.name + "-wal", db.name + "-shm"}
    assert sorted(p.name for p in db.parent.iterdir() if p.name not in sqlite_own) == files_before
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert our_collections(weaviate_client, config_kwargs["collection_prefix"]) == []
    assert namespace_keys(redis_client, config_kwargs["namespace"]) == []
    assert tool_objects(db) == []
    from sqlite_to_weaviate.cli.operate import run_cmd

    planned = CliRunner().invoke(run_cmd, cli_args(config_kwargs) + ["--dry-run", "--workers", "3"])
    assert planned.exit_code == 0, planned.output
    assert "with 3 worker(s)" in planned.output and "nothing was written" in planned.output
    assert db.read_bytes() == before and tool_objects(db) == []
    assert our_collections(weaviate_client, config_kwargs["collection_prefix"]) == []
    assert namespace_keys(redis_client, config_kwargs["namespace"]) == []


def test_migrate_command_backs_up_while_the_app_writes(config_kwargs, weaviate_client, chat_db, tmp_path):
    db, _ = chat_db
    stop = threading.Event()
    written = [0]
    conn = sqlite3.connect(db, isolation_level=None)
    before = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    conv = conn.execute("SELECT id FROM conversations LIMIT 1").fetchone()[0]

    def app_writer() -> None:
        w = sqlite3.connect(db, isolation_level=None, timeout=30)
        i = 0
        while not stop.is_set():
            w.execute("BEGIN IMMEDIATE")
            w.execute("INSERT INTO messages (id, conversation_id, role, content, created_at) VALUES (?, ?, 'user', ?, "
                      "'2024-05-01 10:00:00')", (f"live-{i}", conv, f"live message {i}"))
            w.execute("COMMIT")
            written[0] += 1
            i += 1
            if i % 5 == 0 and w.execute("SELECT 1 FROM sqlite_master WHERE name='_s2w_state'").fetchone() \
                    and w.execute("SELECT 1 FROM _s2w_state WHERE key='phase'").fetchone():
                break  # the migration reached phase 1: these writes were captured and the drain covers them
            time.sleep(0.002)
        w.close()

    writer = threading.Thread(target=app_writer)
    writer.start()
    try:
        time.sleep(0.3)
        result = CliRunner().invoke(migrate_cmd, cli_args(config_kwargs) + [
            "--backup", "--backup-path", config_kwargs["backup_path"], "--validation-sample", "0", "--workers", "2"])
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    assert "migration succeeded" in result.output
    after = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert written[0] > 0 and after == before + written[0]
    backups = list(Path(config_kwargs["backup_path"]).iterdir())
    assert len(backups) == 1 and f"backup: {backups[0]}" in result.output
    copy = sqlite3.connect(backups[0])
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert before <= copy.execute("SELECT count(*) FROM messages").fetchone()[0] <= after
    settings = create_migration_config(environ={}, **config_kwargs).to_settings()
    assert_same_content(settings)


def test_forced_verification_failure_rolls_back_and_says_so(config_kwargs, weaviate_client, redis_client, chat_db):
    db, _ = chat_db
    checksum = app_checksum(db)

    def sabotage(settings) -> None:
        collection = weaviate_client.collections.use(config_kwargs["collection_prefix"] + "Message")
        ids = [o.uuid for o in collection.iterator()][:3]
        for object_id in ids:
            collection.data.delete_by_id(object_id)

    config = create_migration_config(environ={}, **config_kwargs)
    result = run_migration(config, hooks=MigrationHooks(before_verify=sabotage))
    assert not result.success and result.rolled_back
    assert any("verification failed: 3 difference(s)" in e for e in result.errors), result.errors
    text = "\n".join(result.summary())
    assert "ROLLED BACK" in text and "deleted collection" in text
    assert our_collections(weaviate_client, config.collection_prefix) == []
    assert namespace_keys(redis_client, config.namespace) == []
    assert tool_objects(db) == []
    assert app_checksum(db) == checksum  # the app's data was never touched


def test_phases_readiness_gate_resume_and_uninstall(config_kwargs, weaviate_client, chat_db):
    db, _ = chat_db
    args = cli_args(config_kwargs)

    def crash(settings) -> None:
        raise RuntimeError("simulated crash after the drain")

    config = create_migration_config(environ={}, rollback_on_failure=False, backup_before_migration=False,
                                     **config_kwargs)
    first = run_migration(config, hooks=MigrationHooks(after_drain=crash))
    assert not first.success and not first.rolled_back and first.phase == Phase.LIVE
    runner = CliRunner()
    assert "phase 3: dual-write live" in runner.invoke(phase_cmd, args).output
    gate = runner.invoke(ready_cmd, args)
    assert gate.exit_code == 1 and "READY for cutover: no" in gate.output and "no verify has run" in gate.output
    # resume: the finished backfill is not redone, verification completes the migration
    second = run_migration(config)
    assert second.success and second.phase == Phase.VERIFIED, second.summary()
    gate = runner.invoke(ready_cmd, args)
    assert gate.exit_code == 0 and "READY for cutover: yes" in gate.output
    # the app writes: a change not yet applied closes the gate again, and says why
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE conversations SET title = 'changed' WHERE rowid = (SELECT min(rowid) FROM conversations)")
    gate = runner.invoke(ready_cmd, args)
    assert gate.exit_code == 1 and "not yet applied" in gate.output
    # cleanup (phase 5) refuses with pending changes, then removes capture; Weaviate is kept
    refused = runner.invoke(uninstall_cmd, args + ["--yes"])
    assert refused.exit_code == 1 and "drain first" in refused.output
    done = runner.invoke(uninstall_cmd, args + ["--yes", "--force"])
    assert done.exit_code == 0, done.output
    assert tool_objects(db) == ["_s2w_objects"]  # the record of the cutover and of the collections created
    assert len(our_collections(weaviate_client, config.collection_prefix)) == 6
    assert "phase 5" in runner.invoke(phase_cmd, args).output


def test_rollback_keeps_objects_of_a_preexisting_collection(config_kwargs, weaviate_client, chat_db):
    from sqlite_to_weaviate.mapping import ensure_collections

    db, _ = chat_db
    config = create_migration_config(environ={}, backup_before_migration=False, **config_kwargs)
    settings = config.to_settings()
    conn = sqlite3.connect(db)
    mapping = settings.load_mapping(conn)
    documents = mapping.table("documents")
    # the operator's own collection, created before the migration ...
    ensure_collections(weaviate_client, _only(mapping, "documents"))
    result = run_migration(config)
    assert result.success, result.summary()
    # ... holding an object of its own (added after: verify reports it as foreign, and never deletes it)
    theirs = weaviate_client.collections.use(documents.collection).data.insert({"title": "not from SQLite"})
    args = cli_args(config_kwargs)
    preview = CliRunner().invoke(rollback_cmd, args + ["--dry-run"])
    assert preview.exit_code == 0 and "nothing was changed" in preview.output
    assert len(our_collections(weaviate_client, config.collection_prefix)) == 6
    out = CliRunner().invoke(rollback_cmd, args + ["--yes"])
    assert out.exit_code == 0, out.output
    assert our_collections(weaviate_client, config.collection_prefix) == [documents.collection]
    left = [o.uuid for o in weaviate_client.collections.use(documents.collection).iterator()]
    assert left == [theirs]
    assert f"from pre-existing collection {documents.collection}" in out.output
    assert tool_objects(db) == []


def assert_same_content(settings) -> None:
    """Independent of the verifier under test: every row's (uuid, content hash) equals its object's, no extra.

    (tests.support's assert_stores_equal compares properties, which the preset's per-write
    migration_timestamp metadata makes differ by design; the content hash covers the source row.)"""
    summary = run_verification(settings, sample=50)
    assert summary.clean and summary.checked > 0, summary


def _only(mapping, table: str):
    import dataclasses

    return dataclasses.replace(mapping, tables={table: mapping.tables[table]})
