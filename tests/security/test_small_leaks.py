"""Issue 14, item 8: small leaks, each checked against the real servers.

* backups are owner-only files (mode 0600), whatever the umask;
* the Redis password, the Weaviate API key and the job secret appear in no repr, no str,
  no error message and no log line (a real Redis with ``requirepass``, real commands);
* one namespace's rollback never touches another namespace's keys (``app`` vs ``app-p2``);
* read-only commands leave a rollback-journal database in its journal mode.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlite_to_weaviate.cli import main as cli
from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.operate.backup import backup_database
from sqlite_to_weaviate.operate.config import MigrationConfig
from sqlite_to_weaviate.operate.rollback import namespace_keys
from sqlite_to_weaviate.redis_adapter import validate_redis_url
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.weaviate_adapter import Secret, WeaviateEndpoint
from sqlite_to_weaviate.writer.relay import Relay
from tests.support.pipeline import wait_for

pytestmark = pytest.mark.integration


def make_notes_db(path: Path, *, wal: bool = True) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO notes VALUES (?, ?)", [(i, f"note {i}") for i in range(1, 21)])
    conn.close()


# ---------------------------------------------------------------------------- backups
def test_backups_are_owner_only_whatever_the_umask(tmp_path):
    db = tmp_path / "app.db"
    make_notes_db(db)
    os.chmod(db, 0o644)
    old = os.umask(0o022)
    try:
        result = backup_database(db, tmp_path)
        via_cli = CliRunner().invoke(cli, ["backup", "--sqlite-url", str(db), "--to", str(tmp_path / "cli.backup")])
    finally:
        os.umask(old)
    assert via_cli.exit_code == 0, via_cli.output
    for path in (result.path, tmp_path / "cli.backup"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
        assert sqlite3.connect(path).execute("SELECT count(*) FROM notes").fetchone()[0] == 20


# ---------------------------------------------------------------------------- secrets
def test_secrets_stay_out_of_reprs_strs_and_url_errors():
    password, api_key, job_secret = "pw-" + uuid.uuid4().hex, "key-" + uuid.uuid4().hex, "js-" + uuid.uuid4().hex
    settings = Settings(sqlite_path="app.db", redis_url=f"redis://:{password}@127.0.0.1:6379/0",
                        weaviate_api_key=api_key, job_secret=job_secret,
                        weaviate_url="http://127.0.0.1:8080?grpc_port=50051")
    config = MigrationConfig(sqlite_url="app.db", redis_url=f"redis://user:{password}@127.0.0.1:6379/0",
                             weaviate_api_key=api_key, settings_overrides={"job_secret": job_secret})
    secret = Secret(api_key)
    shown = [repr(settings), str(settings), repr(config), str(config), repr(config.to_settings()), repr(secret),
             str(secret), f"{secret}", "%s" % secret, "{}".format(secret), repr(settings.weaviate),
             repr(WeaviateEndpoint.parse("http://127.0.0.1:8080", api_key))]
    for text in shown:
        for value in (password, api_key, job_secret):
            assert value not in text, text
    assert "redis://:***@127.0.0.1:6379/0" in repr(settings)
    with pytest.raises(TypeError):
        json.dumps({"key": secret})  # refuses rather than leaks
    assert secret.reveal() == api_key and secret == api_key
    for url in (f"redis://:{password}@127.0.0.1:99999/0", f"http://:{password}@127.0.0.1:6379/0",
                f"redis://:{password}@:6379/0"):
        with pytest.raises(ConfigError) as caught:
            validate_redis_url(url)
        assert password not in str(caught.value) and "***" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        WeaviateEndpoint.parse(f"http://admin:{password}@127.0.0.1:99999")
    assert password not in str(caught.value)


def test_redis_password_api_key_and_job_secret_never_reach_output_or_logs(tmp_path, redis_server_factory,
                                                                         weaviate_url, weaviate_client,
                                                                         collection_prefix):
    """A real Redis with requirepass, the real commands with DEBUG logs: no secret in any line."""
    password, job_secret = "pw-" + uuid.uuid4().hex, "js-" + uuid.uuid4().hex
    server = redis_server_factory()
    import redis

    admin = redis.Redis.from_url(server.url)
    admin.config_set("requirepass", password)
    admin.close()
    redis_url = f"redis://:{password}@127.0.0.1:{server.port}/0"
    db = tmp_path / "app.db"
    make_notes_db(db)
    log_file = tmp_path / "s2w.log"
    env = dict(os.environ, S2W_SQLITE_URL=str(db), S2W_WEAVIATE_URL=weaviate_url, S2W_REDIS_URL=redis_url,
               S2W_NAMESPACE="leak" + uuid.uuid4().hex[:6], S2W_COLLECTION_PREFIX=collection_prefix,
               S2W_JOB_SECRET=job_secret, S2W_LOG_LEVEL="DEBUG", S2W_LOG_FILE=str(log_file),
               S2W_LEASE_SECONDS="3", S2W_JOB_TIMEOUT="15")
    env.pop("S2W_WEAVIATE_API_KEY", None)

    def cli_run(*args: str, extra: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sqlite_to_weaviate", *args], env=dict(env, **(extra or {})),
                              capture_output=True, text=True, timeout=timeout)

    outputs = []
    for args in (["init"], ["status"], ["status", "--json"], ["dead-letters", "list"], ["job-secret"]):
        result = cli_run(*args)
        assert result.returncode in (0, 1), (args, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
    relay = subprocess.Popen([sys.executable, "-m", "sqlite_to_weaviate", "relay"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("INSERT INTO notes VALUES (100, 'through a password-protected redis')")
        conn.close()

        def applied() -> bool:
            worker = cli_run("worker", "--burst", timeout=60)  # takes what is queued, then exits
            assert worker.returncode == 0, worker.stdout + worker.stderr
            outputs.append(worker.stdout + worker.stderr)
            return cli_run("status").returncode == 0

        wait_for(applied, timeout=120, message="the change never went through the protected Redis", interval=0.5)
    finally:
        relay.send_signal(signal.SIGTERM)
        out, _ = relay.communicate(timeout=60)
        outputs.append(out)
    # a wrong password, an unreachable server: the errors name the URL, never the password
    for url in (f"redis://:wrong-{password}@127.0.0.1:{server.port}/0", f"redis://:{password}@127.0.0.1:1/0"):
        result = cli_run("worker", "--burst", extra={"S2W_REDIS_URL": url}, timeout=60)
        assert result.returncode == 3, result.stdout + result.stderr
        outputs.append(result.stdout + result.stderr)
    outputs.append(log_file.read_text())
    everything = "\n".join(outputs)
    assert '"dispatched"' in everything or "dispatched" in everything  # DEBUG logs were really written
    assert password not in everything
    assert job_secret not in everything  # given explicitly: `job-secret` says so instead of printing it
    assert "given explicitly" in outputs[4]
    assert "through a password-protected redis" not in everything  # nor is row data logged


# ---------------------------------------------------------------------------- namespaces
def test_rollback_keys_of_one_namespace_exclude_a_namespace_that_extends_its_name(tmp_path, make_settings,
                                                                                  pipeline_factory, redis_client,
                                                                                  redis_namespace):
    names = {"short": redis_namespace, "long": f"{redis_namespace}-p2"}
    for label, namespace in names.items():
        db = tmp_path / f"{label}.db"
        make_notes_db(db)
        settings = make_settings(db, namespace=namespace)
        pipeline_factory(settings).init()
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("UPDATE notes SET body = body || '!'")  # captured: the relay has jobs to send
        conn.close()
        relay = Relay(settings)
        try:
            relay.step()  # real RQ jobs, payloads, fences, sentinel; no worker takes them
            assert relay.scheduler.in_flight()
        finally:
            relay.close()
    short = [k.decode() for k in namespace_keys(redis_client, names["short"])]
    long = [k.decode() for k in namespace_keys(redis_client, names["long"])]
    assert any(k.startswith("rq:job:") for k in short) and any(k.startswith("rq:job:") for k in long)
    assert not set(short) & set(long)
    long_marks = (f"{names['long']}-p", f"{names['long']}:", f"{names['long']}.apply")  # its jobs, keys, queue
    assert not [k for k in short if any(m in k for m in long_marks)]
    everything = {k.decode() for k in redis_client.scan_iter(match=f"*{redis_namespace}*", count=1000)}
    assert set(short) | set(long) == everything - {k for k in everything if not k.startswith(("rq:", redis_namespace))}


# ---------------------------------------------------------------------------- journal mode
def test_read_only_commands_leave_a_rollback_journal_database_alone(tmp_path, make_settings, pipeline_factory):
    db = tmp_path / "app.db"
    make_notes_db(db, wal=False)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()  # init installs capture (and moves the file to WAL, by design) ...
    pipeline.start_workers(1)
    pipeline.drain(60)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")  # ... then the operator puts the file back in rollback mode
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    base = ["--sqlite-url", str(db), "--weaviate-url", settings.weaviate_url, "--redis-url", settings.redis_url,
            "--namespace", settings.namespace, "--collection-prefix", settings.collection_prefix]
    for args in (["dead-letters", "list"], ["ready"], ["verify", "--sample", "5"], ["status"], ["phase"],
                 ["job-secret"], ["backfill", "--dry-run"]):
        result = CliRunner().invoke(cli, [*args, *base])
        assert result.exit_code in (0, 1), (args, result.output)
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete", args
        finally:
            conn.close()
        assert not Path(f"{db}-wal").exists(), args
