"""Shared by the security tests: a small app database, the CLI with a test's settings, Weaviate reads."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from sqlite_to_weaviate.backfill import BackfillOptions, backfill
from sqlite_to_weaviate.cli import main
from sqlite_to_weaviate.mapping import ensure_collections


def make_app_db(path: Path, sql: str = "") -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
                       "CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT);" + sql)
    conn.executemany("INSERT INTO notes VALUES (?, ?)", [(i, f"note {i}") for i in range(20)])
    conn.executemany("INSERT INTO docs VALUES (?, ?)", [(i, f"doc {i}") for i in range(15)])
    conn.close()
    return path


def cli(settings: Any, *args: str) -> Result:
    """``sqlite-to-weaviate ARGS`` against ``settings``' database and servers."""
    options = ["--sqlite-url", str(settings.sqlite_path), "--weaviate-url", settings.weaviate_url,
               "--redis-url", settings.redis_url, "--namespace", settings.namespace,
               "--collection-prefix", settings.collection_prefix]
    if settings.mapping_file:
        options += ["--mapping", str(settings.mapping_file)]
    command, rest = list(args[:1]), list(args[1:])
    return CliRunner().invoke(main, command + options + rest)


def migrate_rows(settings: Any, pipeline_factory: Any) -> None:
    """Backfill every mapped table through a real relay and worker, until applied."""
    pipeline = pipeline_factory(settings)
    pipeline.start_workers(1)
    backfill(settings, BackfillOptions(wait_applied=False))
    pipeline.drain()


def collection_of(settings: Any, table: str) -> str:
    conn = sqlite3.connect(settings.sqlite_path)
    try:
        return settings.load_mapping(conn).table(table).collection
    finally:
        conn.close()


def operators_collection(client: Any, settings: Any, table: str) -> tuple[str, Any]:
    """The operator's own collection for ``table`` (same schema), holding one object of theirs."""
    import dataclasses

    conn = sqlite3.connect(settings.sqlite_path)
    try:
        mapping = settings.load_mapping(conn)
    finally:
        conn.close()
    only = dataclasses.replace(mapping, tables={table: mapping.tables[table]})
    ensure_collections(client, only)
    name = mapping.table(table).collection
    theirs = client.collections.use(name).data.insert({mapping.table(table).columns[-1].property: "the operator's own"})
    return name, theirs


def object_ids(client: Any, name: str) -> set[str]:
    return {str(o.uuid) for o in client.collections.use(name).iterator()}


def collections_with(client: Any, prefix: str) -> list[str]:
    return sorted(n for n in client.collections.list_all(simple=True) if n.startswith(prefix))


def app_checksum(db: Path, tables: list[str]) -> str:
    conn = sqlite3.connect(db)
    digest = hashlib.sha256()
    try:
        for t in tables:
            digest.update(t.encode())
            for row in sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{t}"')):
                digest.update(row.encode())
    finally:
        conn.close()
    return digest.hexdigest()


def schema_objects(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute("SELECT type, name FROM sqlite_master WHERE name != 'sqlite_sequence'").fetchall())
    finally:
        conn.close()


def one_error_line(result: Result) -> str:
    """The single ``error:`` line a failed command must print on stderr (asserts exit code 3).

    Structured log lines (JSON, the log channel; ``--log-file`` moves them) are not counted.
    """
    assert result.exit_code == 3, (result.exit_code, result.output, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith('{"')]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
