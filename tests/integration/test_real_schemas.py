"""Schemas as real applications have them, on the real servers: migrate, run under live writes, verify.

The schemas (tests/support/real_schemas.py) are generated here: 120 tables, STRICT tables,
generated columns, FTS5 with its shadow tables, views, self-referencing foreign keys, a
WITHOUT ROWID composite TEXT key, NUMERIC/DECIMAL holding integers, reals and text,
DATETIME as text, unix seconds and milliseconds, awkward names, an ATTACHed second schema
and names near or past Weaviate's length limits. Each goes through the commands a user
runs, as subprocesses: ``migrate``, then ``run`` while the application writes to every
table, then ``verify``; both the verifier and an independent comparison
(``assert_stores_equal``) must find the stores equal.

The default suite runs every schema once, side by side in one database (one migrate, one
sidecar, one verify: the cost of starting things is paid once; the 120-table database is
the same one). The ``slow`` variant runs each schema alone, in its own database, with
more rows.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from weaviate.classes.config import DataType as WeaviateType
from weaviate.classes.config import Configure, Property

from sqlite_to_weaviate.backfill import BackfillOptions, backfill
from sqlite_to_weaviate.cli.pipeline import init_cmd
from sqlite_to_weaviate.mapping.naming import MAX_COLLECTION_NAME, MAX_PROPERTY_NAME, MAX_VECTOR_NAME
from sqlite_to_weaviate.operate.worker_pool import worker_cli_env
from sqlite_to_weaviate.verify import verify
from tests.support import real_schemas
from tests.support.pipeline import assert_stores_equal, stop_process_groups, wait_for
from tests.support.real_schemas import ALL, Schema, build_database, open_app_connection

pytestmark = pytest.mark.integration

TUNING = dict(lease_seconds=3.0, job_timeout=15, retry_delay=0.2, backoff_max=2.0, poll_interval=0.3, partitions=4,
              batch_size=200)


@pytest.fixture
def drop_collections_in_parallel(weaviate_client, collection_prefix):
    """Delete the test's collections with a few threads (the shared fixture then finds none).

    Weaviate takes tenths of a second per collection delete, mostly waiting: for the
    135 collections of the combined database, threads cut the teardown by about half.
    """
    yield
    names = [n for n in weaviate_client.collections.list_all(simple=True) if n.startswith(collection_prefix)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(weaviate_client.collections.delete, names))


def cli(settings, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``sqlite-to-weaviate ARGS`` as a user runs it (settings through the environment)."""
    return subprocess.run([sys.executable, "-m", "sqlite_to_weaviate", *args], env=worker_cli_env(settings, "WARNING"),
                          capture_output=True, text=True, timeout=timeout)


def outbox_position(db: Path) -> tuple[int, int]:
    """(last seq ever issued, relay checkpoint)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = '_s2w_outbox'").fetchone()
        checkpoint = conn.execute("SELECT value FROM _s2w_state WHERE key = 'relay.checkpoint'").fetchone()
        return (int(row[0]) if row else 0), (int(checkpoint[0]) if checkpoint else 0)
    finally:
        conn.close()


class AppWriter(threading.Thread):
    """The application: one small write per schema in turn, each its own BEGIN IMMEDIATE transaction."""

    def __init__(self, db: Path, schemas: tuple[Schema, ...], seed: int) -> None:
        super().__init__(daemon=True, name="app-writer")
        self.db, self.schemas, self.rng = db, schemas, random.Random(seed)
        self.stop = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = open_app_connection(self.db, self.schemas)
        try:
            while not self.stop.is_set():
                schema = self.schemas[self.count % len(self.schemas)]
                conn.execute("BEGIN IMMEDIATE")
                try:
                    schema.write(conn, self.rng, self.count // len(self.schemas))
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                self.count += 1
                time.sleep(0.001)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            conn.close()


def check_attached_schema_is_not_captured(db: Path, schemas: tuple[Schema, ...]) -> None:
    """A transaction that writes only to the ATTACHed schema adds nothing to the outbox."""
    conn = open_app_connection(db, schemas)
    try:
        before = outbox_position(db)[0]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO analytics.sessions VALUES ('probe', 1) ON CONFLICT(id) DO UPDATE SET hits = hits + 1")
        conn.execute("INSERT INTO analytics.page_views (session_id, path) VALUES ('probe', '/probe')")
        conn.execute("DELETE FROM analytics.sessions WHERE id = 's1'")
        conn.execute("COMMIT")
        assert outbox_position(db)[0] == before, "a write to the ATTACHed schema was captured"
        assert conn.execute("SELECT count(*) FROM analytics.page_views WHERE path = '/probe'").fetchone()[0] == 1
    finally:
        conn.close()


def run_lifecycle(settings, schemas: tuple[Schema, ...], rows: int, *, min_live_writes: int, log_dir: Path,
                  weaviate_client) -> dict:
    """migrate -> run with live writes -> verify, then every check; returns the verify report."""
    db = Path(settings.sqlite_path)
    settings = settings.replace(mapping_file=build_database(db, schemas, rows))
    conn = sqlite3.connect(db)
    try:
        mapping = settings.load_mapping(conn)
    finally:
        conn.close()
    for schema in schemas:
        for table, word in schema.skipped.items():
            assert word in mapping.skipped.get(table, ""), (table, mapping.skipped.get(table))
            assert table not in mapping.tables

    migrated = cli(settings, "migrate", "--validation-sample", "20", timeout=600)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "migration succeeded" in migrated.stdout, migrated.stdout
    for schema in schemas:  # the user is told what was not migrated, and why
        for table, word in schema.skipped.items():
            assert f"skipped {table}: {word}" in migrated.stdout, migrated.stdout

    writer = AppWriter(db, schemas, seed=7)
    writer.start()
    log = open(log_dir / "sidecar.log", "ab")
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "sqlite_to_weaviate", "run", "--workers", "2", "--no-metrics", "--shutdown-grace", "3"],
        env=worker_cli_env(settings, "INFO"), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        start_seq = outbox_position(db)[0]
        # the sidecar applies live changes while the app keeps writing to every schema
        wait_for(lambda: writer.error or (writer.count >= min_live_writes and outbox_position(db)[1] > start_seq),
                 timeout=180, message=f"live writes applied by the sidecar (writes: {writer.count})")
        writer.stop.set()
        writer.join(timeout=30)
        assert writer.error is None, f"the application's write failed: {writer.error!r}"
        last = outbox_position(db)[0]
        wait_for(lambda: outbox_position(db)[1] >= last, timeout=180, message="the sidecar to apply every change")
        sidecar.send_signal(signal.SIGTERM)
        assert sidecar.wait(timeout=90) == 0
    finally:
        writer.stop.set()
        stop_process_groups([sidecar], timeout=30)
        log.close()

    verified = cli(settings, "verify", "--sample", "50", "--json", timeout=600)
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["clean"], verified.stdout[-5000:] + verified.stderr[-2000:]
    refused = {t: r["refused"] for t, r in report["tables"].items() if r["refused"]["total"]}
    assert not refused, refused
    assert set(report["tables"]) == set(mapping.tables)

    conn = sqlite3.connect(db)
    try:
        dead = conn.execute("SELECT count(*) FROM _s2w_dead_letters").fetchone()[0]
        assert dead == 0, conn.execute("SELECT * FROM _s2w_dead_letters LIMIT 5").fetchall()
        total_rows = sum(conn.execute(f'SELECT count(*) FROM "{t.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
                         for t in mapping.tables)
    finally:
        conn.close()
    assert report["checked"] == total_rows
    assert assert_stores_equal(weaviate_client, db, mapping) == total_rows

    app = open_app_connection(db, schemas)
    try:
        for schema in schemas:
            if schema.check is not None:
                schema.check(app, db.parent)
    finally:
        app.close()
    if real_schemas.ATTACHED in schemas:
        check_attached_schema_is_not_captured(db, schemas)
    return report


@pytest.mark.timeout(900)
def test_every_real_schema_migrates_runs_live_and_verifies_equal(tmp_path, make_settings, weaviate_client,
                                                                  redis_client, drop_collections_in_parallel):
    settings = make_settings(tmp_path / "app.db", **TUNING)
    report = run_lifecycle(settings, ALL, rows=12, min_live_writes=400, log_dir=tmp_path, weaviate_client=weaviate_client)
    assert len(report["tables"]) >= real_schemas.MANY + 15  # far past SQLite's 10 attached databases


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("schema", ALL, ids=[s.key for s in ALL])
def test_each_real_schema_alone_with_more_rows(schema, tmp_path, make_settings, weaviate_client, redis_client,
                                               drop_collections_in_parallel):
    settings = make_settings(tmp_path / "app.db", **TUNING)
    run_lifecycle(settings, (schema,), rows=2000, min_live_writes=1500, log_dir=tmp_path,
                  weaviate_client=weaviate_client)


def test_weaviate_name_limits_are_the_ones_the_mapping_uses(weaviate_client, collection_prefix):
    """The real server takes a 255-character collection, a 231-character property and a 230-character
    named vector, and no more."""
    longest = collection_prefix + "C" * (MAX_COLLECTION_NAME - len(collection_prefix))
    prop, vector = "p" * MAX_PROPERTY_NAME, "v" * MAX_VECTOR_NAME
    weaviate_client.collections.create(longest, properties=[Property(name=prop, data_type=WeaviateType.TEXT)],
                                       vector_config=[Configure.Vectors.self_provided(name=vector)])
    collection = weaviate_client.collections.use(longest)
    collection.data.insert({prop: "fits"}, vector={vector: [0.5, 0.25]})
    [stored] = collection.query.fetch_objects(include_vector=True).objects
    assert stored.properties[prop] == "fits" and stored.vector[vector] == [0.5, 0.25]
    with pytest.raises(Exception, match="should not be longer than 230 characters"):
        weaviate_client.collections.create(collection_prefix + "V", vector_config=[
            Configure.Vectors.self_provided(name=vector + "v")])
    with pytest.raises(Exception, match="should not be longer than 255 characters"):
        weaviate_client.collections.create(longest + "X")
    with pytest.raises(Exception, match="should not be longer than 231 characters"):
        weaviate_client.collections.create(collection_prefix + "P", properties=[
            Property(name=prop + "p", data_type=WeaviateType.TEXT)])


def test_names_past_the_limits_are_shortened_end_to_end(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                       collection_prefix):
    """A 300-character table and column: shortened names, written, verified; a prefix too long is refused."""
    # the table name starts with the test's prefix, so its collection is cleaned up with the test's
    table = f"{collection_prefix}_" + "archived_customer_feedback_" * 11
    column = "answer_to_the_question_how_likely_are_you_to_recommend_us_" * 5
    db = tmp_path / "long.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, "{column}" INTEGER, note TEXT)')
    conn.executemany(f'INSERT INTO "{table}" VALUES (?, ?, ?)', [(i, i % 11, f"note {i}") for i in range(50)])
    settings = make_settings(db, collection_prefix="", **TUNING)
    mapping = settings.load_mapping(conn)
    collection = mapping.table(table).collection
    assert len(collection) == MAX_COLLECTION_NAME and len(mapping.table(table).columns[1].property) == MAX_PROPERTY_NAME

    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    conn.execute(f'UPDATE "{table}" SET "{column}" = 10 WHERE id < 5')
    conn.execute(f'DELETE FROM "{table}" WHERE id = 7')
    backfill(settings, BackfillOptions(wait_applied=False))
    pipeline.drain()
    assert assert_stores_equal(weaviate_client, db, mapping) == 49
    report = verify(settings, sample=50)
    assert report.clean and report.checked == 49 and report.tables[table].sampled == 49, report.render()
    conn.close()

    refused = CliRunner().invoke(init_cmd, ["--sqlite-url", str(db), "--collection-prefix", "Blue" + "x" * 10,
                                            "--weaviate-url", settings.weaviate_url, "--redis-url", settings.redis_url])
    assert refused.exit_code == 3, refused.output
    assert "Weaviate allows at most 255" in refused.output and "collection = " in refused.output, refused.output
