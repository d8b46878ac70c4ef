"""Operations without servers: config sources and validation, phases and the readiness gate,
online backup under concurrent writes, the metrics exposition, Redis key selection."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.request

import pytest

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.operate.backup import BackupError, backup_database
from sqlite_to_weaviate.operate.config import MigrationConfig, create_migration_config
from sqlite_to_weaviate.operate.metrics import EMBEDDING_METRIC_NAMES, METRIC_NAMES, MetricsSample, MetricsServer, SidecarCollector
from sqlite_to_weaviate.operate.phases import (
    Phase, evaluate_readiness, get_phase, record_verification, set_phase,
)
from sqlite_to_weaviate.operate.rollback import namespace_keys


# ----------------------------------------------------------------------------- config
def test_config_defaults_match_the_original_design(tmp_path):
    c = MigrationConfig(sqlite_url=str(tmp_path / "a.db"))
    assert (c.batch_size, c.max_retries, c.retry_delay, c.validation_sample_size) == (100, 3, 1.0, 1000)
    assert (c.enable_parallel_processing, c.worker_count, c.memory_limit_mb) == (False, 4, 1024)
    assert (c.dry_run, c.backup_before_migration, c.rollback_on_failure) == (False, True, True)
    assert (c.log_level, c.log_file) == ("INFO", None)
    assert c.workers == 1
    assert MigrationConfig(sqlite_url="x.db", enable_parallel_processing=True).workers == 4


def test_config_repr_hides_the_api_key():
    c = MigrationConfig(sqlite_url="x.db", weaviate_api_key="sekrit-123")
    assert "sekrit" not in repr(c) and "sekrit" not in str(c)
    assert "sekrit" not in repr(c.to_settings())
    assert c.to_settings().weaviate_api_key.reveal() == "sekrit-123"


def test_config_precedence_kwargs_env_file_default(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text('[migration]\nsqlite_url = "file.db"\nbatch_size = 7\nworker_count = 2\nnamespace = "fromfile"\n')
    env = {"S2W_BATCH_SIZE": "9", "S2W_ENABLE_PARALLEL_PROCESSING": "yes", "S2W_WEAVIATE_API_KEY": "k"}
    c = create_migration_config(cfg, environ=env, namespace="kw")
    assert c.sqlite_url == "file.db"       # file
    assert c.batch_size == 9               # env beats file
    assert c.worker_count == 2             # file beats default
    assert c.namespace == "kw"             # kwarg beats file
    assert c.enable_parallel_processing is True and c.weaviate_api_key == "k"
    assert c.max_retries == 3              # default


@pytest.mark.parametrize("kwargs, message", [
    (dict(weaviate_url="ftp://x"), "scheme must be http"),
    (dict(weaviate_url="http://h:99999"), "invalid port"),
    (dict(redis_url="http://h"), "redis_url"),
    (dict(batch_size=0), "batch_size"),
    (dict(worker_count=-1), "worker_count"),
    (dict(log_level="LOUD"), "log_level"),
    (dict(bach_size=3), "did you mean 'batch_size'"),
])
def test_config_errors_name_the_problem(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        create_migration_config(sqlite_url="x.db", environ={}, **kwargs)


def test_config_requires_a_database():
    with pytest.raises(ConfigError, match="S2W_SQLITE_URL"):
        create_migration_config(environ={})
    with pytest.raises(ConfigError, match="cannot read 'many' as int"):
        create_migration_config(environ={"S2W_SQLITE_URL": "a.db", "S2W_WORKER_COUNT": "many"})


# ----------------------------------------------------------------------------- phases
def _db_with_capture_tables(path):
    from sqlite_to_weaviate import capture

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
    capture.install(conn, ["items"])
    return conn


def test_phase_moves_forward_only(tmp_path):
    conn = _db_with_capture_tables(tmp_path / "a.db")
    assert get_phase(conn) is Phase.NONE
    set_phase(conn, Phase.BACKFILL)
    assert set_phase(conn, Phase.SCHEMA) is Phase.BACKFILL  # a re-run of init does not go back
    assert get_phase(conn) is Phase.BACKFILL
    set_phase(conn, Phase.SCHEMA, allow_backwards=True)
    assert get_phase(conn) is Phase.SCHEMA


def test_readiness_gate_says_why(tmp_path):
    conn = _db_with_capture_tables(tmp_path / "a.db")
    r = evaluate_readiness(conn, ["items"])
    assert not r.ready
    assert any("backfill not finished for: items" in x for x in r.reasons)
    assert any("no verify" in x for x in r.reasons)
    conn.execute("INSERT INTO _s2w_state VALUES ('backfill.items', ?)",
                 (json.dumps({"done": True, "updated_at": time.time() - 10}),))
    record_verification(conn, {"clean": True, "differences": 0})
    assert evaluate_readiness(conn, ["items"]).ready
    # a change waiting in the outbox: not ready, with the lag
    conn.execute("INSERT INTO _s2w_outbox(tbl, op, k1, ts) VALUES ('items', 'I', 1, ?)", (time.time() - 2,))
    r = evaluate_readiness(conn, ["items"])
    assert not r.ready and r.checks["outbox_drained"] is False and "not yet applied" in r.reasons[0]
    conn.execute("INSERT INTO _s2w_state VALUES ('relay.checkpoint', '1')")
    assert evaluate_readiness(conn, ["items"]).ready
    # an old verify, a dirty verify, a dead letter
    assert not evaluate_readiness(conn, ["items"], now=time.time() + 7200).ready
    record_verification(conn, {"clean": False, "differences": 3})
    assert "3 difference(s)" in " ".join(evaluate_readiness(conn, ["items"]).reasons)
    record_verification(conn, {"clean": True, "differences": 0})
    from sqlite_to_weaviate.store import dead_letters

    dead_letters.record(conn, [("u", "items", (1,), "weaviate", "rejected")])
    r = evaluate_readiness(conn, ["items"])
    assert not r.ready and r.checks["no_dead_letters"] is False


# ----------------------------------------------------------------------------- backup
def test_backup_is_consistent_while_a_writer_keeps_writing(tmp_path):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t(body) VALUES (?)", [("x" * 200,)] * 20000)
    conn.execute("COMMIT")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        w = sqlite3.connect(db, isolation_level=None, timeout=30)
        while not stop.is_set():
            w.execute("BEGIN IMMEDIATE")
            w.executemany("INSERT INTO t(body) VALUES (?)", [("y" * 200,)] * 10)
            w.execute("COMMIT")
            written[0] += 10
        w.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        before = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        result = backup_database(db, tmp_path)
        after = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        stop.set()
        thread.join()
    assert written[0] > 0
    copy = sqlite3.connect(result.path)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = copy.execute("SELECT count(*) FROM t").fetchone()[0]
    assert before <= n <= after
    assert result.path.parent == tmp_path and result.path.name.startswith("app.db.")
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_backup_errors_are_one_clear_line(tmp_path):
    with pytest.raises(BackupError, match="does not exist"):
        backup_database(tmp_path / "missing.db")
    db = tmp_path / "a.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(BackupError, match="cannot write a backup into '/proc'"):
        backup_database(db, "/proc/s2w-backup.db")
    with pytest.raises(BackupError, match="directory .* does not exist"):
        backup_database(db, tmp_path / "nope" / "b.db")


# ----------------------------------------------------------------------------- metrics
def test_metrics_endpoint_serves_every_series_and_health():
    sample = MetricsSample(lag_seconds=0.5, outbox_depth=3, applied_total=10, errors_total=1, retries_total=1,
                           dead_letters=0, backfill_rows={"items": 5}, backfill_progress={"items": 0.5},
                           verify_differences=0, workers=2, phase=2)
    server = MetricsServer(SidecarCollector(lambda: sample)).start()
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5).read())
    finally:
        server.stop()
    for name in METRIC_NAMES:
        assert f"\n{name}" in "\n" + text, name
    assert 's2w_backfill_progress_ratio{table="items"} 0.5' in text
    assert "s2w_applied_total 10.0" in text
    assert "\ns2w_embedding_inputs_total{" not in text  # no embedder has run: no per-embedder series
    assert health["healthy"] is True and health["workers"] == 2


def test_metrics_serve_embedding_counters_per_embedder():
    counts = {"requests": 3, "embedded": 90, "chars": 4000, "tokens": 1000, "reused_object": 500, "reused_cache": 10,
              "refused": 1, "truncated": 0}
    server = MetricsServer(SidecarCollector(lambda: MetricsSample(embeddings={"all-MiniLM-L6-v2@53aa5117": counts})))
    server.start()
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
    finally:
        server.stop()
    for name in EMBEDDING_METRIC_NAMES:
        assert f"\n{name}{{" in "\n" + text, name
    assert 's2w_embedding_inputs_total{embedder="all-MiniLM-L6-v2@53aa5117"} 90.0' in text
    assert 's2w_embedding_reused_total{embedder="all-MiniLM-L6-v2@53aa5117",source="object"} 500.0' in text
    assert 's2w_embedding_reused_total{embedder="all-MiniLM-L6-v2@53aa5117",source="cache"} 10.0' in text


def test_two_sidecar_registries_do_not_collide():
    a = MetricsServer(SidecarCollector(lambda: MetricsSample(workers=1)))
    b = MetricsServer(SidecarCollector(lambda: MetricsSample(workers=2)))
    assert a.registry is not b.registry
    a.httpd.server_close()
    b.httpd.server_close()


# ----------------------------------------------------------------------------- redis keys
class _FakeScan:
    def __init__(self, keys):
        self.keys = [k.encode() for k in keys]

    def scan_iter(self, match, count):
        import fnmatch

        return [k for k in self.keys if fnmatch.fnmatchcase(k.decode(), match)]


def test_namespace_keys_never_match_another_namespace():
    # job ids are <namespace>-p<partition>-<12-hex run id>-<counter> (writer/relay.py)
    keys = ["ns:sentinel", "ns:fence:1", "rq:queue:ns.apply", "rq:wip:ns.apply", "rq:job:ns-p3-0123456789ab-1",
            "rq:results:ns-p0-0123456789ab-2", "ns-prod:sentinel", "rq:job:ns-prod-p1-0123456789ab-1",
            "rq:queue:ns-prod.apply", "rq:queues", "other:key",
            # issue 14: namespace "ns" took the jobs of namespace "ns-p2"
            "ns-p2:sentinel", "rq:job:ns-p2-p3-0123456789ab-1", "rq:results:ns-p2-p0-0123456789ab-9"]
    found = {k.decode() for k in namespace_keys(_FakeScan(keys), "ns")}
    assert found == {"ns:sentinel", "ns:fence:1", "rq:queue:ns.apply", "rq:wip:ns.apply",
                     "rq:job:ns-p3-0123456789ab-1", "rq:results:ns-p0-0123456789ab-2"}
    other = {k.decode() for k in namespace_keys(_FakeScan(keys), "ns-p2")}
    assert other == {"ns-p2:sentinel", "rq:job:ns-p2-p3-0123456789ab-1", "rq:results:ns-p2-p0-0123456789ab-9"}


# ----------------------------------------------------------------------------- backup command
def test_backup_command_reports_the_path_and_fails_with_one_line(tmp_path):
    from click.testing import CliRunner

    from sqlite_to_weaviate.cli.operate import backup_cmd

    db = tmp_path / "a.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    before = db.read_bytes()
    runner = CliRunner()
    dry = runner.invoke(backup_cmd, ["--sqlite-url", str(db), "--to", str(tmp_path), "--dry-run"])
    assert dry.exit_code == 0 and "nothing was written" in dry.output
    assert [p.name for p in tmp_path.iterdir()] == ["a.db"]
    ok = runner.invoke(backup_cmd, ["--sqlite-url", str(db), "--to", str(tmp_path / "copy.db")])
    assert ok.exit_code == 0, ok.output
    assert f"backup written: {tmp_path / 'copy.db'}" in ok.output and "integrity ok" in ok.output
    bad = runner.invoke(backup_cmd, ["--sqlite-url", str(db), "--to", "/proc/copy.db"])
    assert bad.exit_code == 3
    assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: cannot write a backup into '/proc'")
    assert db.read_bytes() == before


def test_rollback_and_uninstall_refuse_while_a_relay_runs(tmp_path):
    from click.testing import CliRunner

    from sqlite_to_weaviate.cli.operate import rollback_cmd, run_cmd, uninstall_cmd
    from sqlite_to_weaviate.writer.relay_lock import RelayLock

    db = tmp_path / "a.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    before = db.read_bytes()
    lock = RelayLock(db)
    lock.acquire()
    try:
        for cmd in (rollback_cmd, uninstall_cmd, run_cmd):
            extra = {rollback_cmd: ["--yes"], uninstall_cmd: ["--yes", "--force"], run_cmd: ["--no-metrics"]}[cmd]
            result = CliRunner().invoke(cmd, ["--sqlite-url", str(db), *extra])
            assert result.exit_code == 3, result.output
            assert "another relay is already running" in result.stderr
    finally:
        lock.release()
    assert db.read_bytes() == before
