"""Invariant 9 at the entry points: bad input gets one clear error and loses nothing."""

from __future__ import annotations

import hashlib
import sqlite3

from click.testing import CliRunner

from sqlite_to_weaviate.cli import main
from sqlite_to_weaviate.store import dead_letters
from tests.support.pipeline import assert_stores_equal


def _env(settings) -> dict[str, str]:
    return {"S2W_WEAVIATE_URL": settings.weaviate_url, "S2W_REDIS_URL": settings.redis_url,
            "S2W_NAMESPACE": settings.namespace, "S2W_COLLECTION_PREFIX": settings.collection_prefix}


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path, make_settings):
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"this is a text file, not a database\n" * 100)
    before = hashlib.sha256(bogus.read_bytes()).hexdigest()
    settings = make_settings(tmp_path / "unused.db")
    result = CliRunner().invoke(main, ["init", "--sqlite-url", str(bogus)], env=_env(settings))
    assert result.exit_code == 3
    assert "is not a SQLite database" in result.output
    assert hashlib.sha256(bogus.read_bytes()).hexdigest() == before


def test_a_locked_database_gives_one_error_and_installs_nothing(tmp_path, make_settings):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    settings = make_settings(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock beyond our busy timeout
    try:
        result = CliRunner().invoke(main, ["init", "--sqlite-url", str(db)], env=_env(settings))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 3, result.output
    assert "locked" in result.output
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0] == 0


def test_table_names_with_quotes_and_sql_and_a_10mb_row(tmp_path, make_settings, pipeline_factory, weaviate_client):
    """Hostile identifiers are data, never SQL; a 10 MB row lands or is dead-lettered, never lost."""
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    hostile = 'notes"; DROP TABLE keep; --'
    conn.execute(f'CREATE TABLE "{hostile.replace(chr(34), chr(34) * 2)}" (id INTEGER PRIMARY KEY, "we""ird col" TEXT)')
    conn.execute("CREATE TABLE keep (id INTEGER PRIMARY KEY, body TEXT)")
    settings = make_settings(db, batch_size=10)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    quoted = '"' + hostile.replace('"', '""') + '"'
    conn.executemany(f'INSERT INTO {quoted} VALUES (?, ?)', [(i, f"note {i}") for i in range(5)])
    conn.execute("INSERT INTO keep VALUES (1, ?)", ("x" * 10_000_000,))
    conn.execute("INSERT INTO keep VALUES (2, 'small')")
    pipeline.drain(180)
    assert conn.execute("SELECT count(*) FROM keep").fetchone()[0] == 2  # nothing was executed as SQL
    mapping = settings.load_mapping(conn)
    letters = {(d.table, d.key): d.reason for d in dead_letters.list_letters(conn)}
    if letters:  # Weaviate may refuse a 10 MB request: then the row waits, with its reason
        assert set(letters) == {("keep", (1,))}, letters
        assert letters[("keep", (1,))]
        collection = weaviate_client.collections.use(mapping.table("keep").collection)
        assert collection.aggregate.over_all(total_count=True).total_count == 1
    else:
        assert_stores_equal(weaviate_client, db, mapping)
    notes = weaviate_client.collections.use(mapping.table(hostile).collection)
    assert notes.aggregate.over_all(total_count=True).total_count == 5
