"""Workers on other hosts: a worker needs Redis and Weaviate, never the SQLite file.

The relay runs beside the database (here: in the test process); the workers run from
another working directory, with their own HOME and an environment that holds no database
path at all. Where ``ip netns`` works (root with CAP_SYS_ADMIN), the workers also run in a
separate network namespace that reaches Redis and Weaviate only through a veth pair on
addresses this test creates; the servers bind those addresses besides 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sqlite_to_weaviate.local.redis_server import RedisServer
from sqlite_to_weaviate.local.weaviate_server import WeaviateServer
from sqlite_to_weaviate.weaviate_adapter import connect_weaviate
from sqlite_to_weaviate.writer.job_secret import stored_job_secret
from tests.integration.test_writer_pipeline import make_db, random_writes
from tests.support.pipeline import Pipeline, assert_stores_equal, stop_process_groups

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def remote_worker_env(settings, home: Path) -> dict[str, str]:
    """What an operator would give a worker on another host: services, namespace, tuning and
    the job secret (``sqlite-to-weaviate job-secret`` prints it where the database is); no database."""
    conn = settings.open_db(readonly=True)
    try:
        secret = settings.job_secret or stored_job_secret(conn)
    finally:
        conn.close()
    assert secret is not None, "init stores a job secret"
    env = {
        "S2W_JOB_SECRET": secret.reveal(),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "S2W_WEAVIATE_URL": settings.weaviate_url, "S2W_REDIS_URL": settings.redis_url,
        "S2W_NAMESPACE": settings.namespace, "S2W_LEASE_SECONDS": str(settings.lease_seconds),
        "S2W_JOB_TIMEOUT": str(settings.job_timeout), "S2W_RETRY_DELAY": str(settings.retry_delay),
        "S2W_BACKOFF_MAX": str(settings.backoff_max), "S2W_LOG_LEVEL": "INFO",
        # the package as installed on that host (here: this checkout)
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    assert not any(str(settings.sqlite_path) in value or "app.db" in value for value in env.values())
    return env


def start_remote_worker(argv_prefix: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([*argv_prefix, sys.executable, "-m", "sqlite_to_weaviate", "worker"], env=env,
                                cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def open_files(pid: int) -> set[str]:
    fds = Path(f"/proc/{pid}/fd")
    out = set()
    for fd in fds.iterdir() if fds.exists() else []:
        try:
            out.add(os.readlink(fd))
        except OSError:
            pass
    return out


def test_workers_from_another_directory_without_the_database(tmp_path, make_settings, pipeline_factory,
                                                             weaviate_client):
    db = tmp_path / "app" / "app.db"
    db.parent.mkdir()
    conn = make_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    relay = pipeline.start_relay_thread()
    elsewhere, home = tmp_path / "worker-host", tmp_path / "worker-home"
    elsewhere.mkdir()
    home.mkdir()
    env = remote_worker_env(settings, home)
    workers = [start_remote_worker([], env, elsewhere, elsewhere / f"worker{i}.log") for i in range(2)]
    try:
        random_writes(conn, random.Random(1), 300)
        pipeline.wait_caught_up(120)
        for w in workers:
            assert w.poll() is None, (elsewhere / "worker0.log").read_text()[-2000:]
            assert not any(str(db.parent) in f for f in open_files(w.pid))
        assert relay.stats["applied_jobs"] > 0
        assert_stores_equal(weaviate_client, db, settings.load_mapping(conn))
        assert not list(elsewhere.glob("*.db*")) and not list(home.iterdir())  # nothing written where they run
    finally:
        stop_process_groups(workers, timeout=15)


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def veth_namespace():
    """A network namespace joined to this one by a veth pair: (name, host address, namespace address)."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (`ip`) is not installed: cannot create a network namespace")
    tag = uuid.uuid4().hex[:6]
    name, host_if, ns_if = f"s2w{tag}", f"s2wa{tag}", f"s2wb{tag}"
    created = _ip("netns", "add", name)
    if created.returncode != 0:
        pytest.skip(f"`ip netns add` is not permitted here ({created.stderr.strip()}): needs root with CAP_SYS_ADMIN")
    block = random.Random(tag).randrange(0, 64 * 256) * 4  # a /30 inside 10.200.0.0/16
    host_ip = f"10.200.{block // 256}.{block % 256 + 1}"
    ns_ip = f"10.200.{block // 256}.{block % 256 + 2}"
    try:
        for args in (("link", "add", host_if, "type", "veth", "peer", "name", ns_if),
                     ("link", "set", ns_if, "netns", name),
                     ("addr", "add", f"{host_ip}/30", "dev", host_if), ("link", "set", host_if, "up"),
                     ("-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_if), ("-n", name, "link", "set", ns_if, "up"),
                     ("-n", name, "link", "set", "lo", "up")):
            result = _ip(*args)
            assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr}"
        yield name, host_ip, ns_ip
    finally:
        _ip("netns", "del", name)  # also removes the veth pair
        _ip("link", "del", host_if)  # in case the namespace never got its end


def test_workers_in_another_network_namespace(tmp_path, veth_namespace, make_settings, collection_prefix):
    netns, host_ip, ns_ip = veth_namespace
    secret = uuid.uuid4().hex  # Redis listening beyond loopback: protected mode wants a password
    redis_server = RedisServer(tmp_path / "redis", password=secret, also_bind=(host_ip,)).start()
    weaviate = WeaviateServer(tmp_path / "weaviate", host=host_ip)  # its HTTP API on the veth address only
    workers: list[subprocess.Popen] = []
    pipeline = None
    try:
        weaviate.start()
        db = tmp_path / "app" / "app.db"
        db.parent.mkdir()
        conn = make_db(db)
        redis_url = f"redis://:{secret}@{host_ip}:{redis_server.port}/0"
        settings = make_settings(db, weaviate_url=weaviate.url, redis_url=redis_url)
        pipeline = Pipeline(settings, tmp_path)
        pipeline.init()
        relay = pipeline.start_relay_thread()
        elsewhere, home = tmp_path / "netns-host", tmp_path / "netns-home"
        elsewhere.mkdir()
        home.mkdir()
        env = remote_worker_env(settings, home)
        inside = ["ip", "netns", "exec", netns]
        # the namespace really is another network: its 127.0.0.1 has no Redis, the veth address has
        probe = subprocess.run(
            [*inside, sys.executable, "-c",
             "import socket,sys\n"
             f"for h in ('127.0.0.1', '{host_ip}'):\n"
             "    s = socket.socket(); s.settimeout(2)\n"
             f"    print(h, s.connect_ex((h, {redis_server.port})))\n"],
            capture_output=True, text=True, timeout=30, env=env)
        lines = dict(line.split() for line in probe.stdout.split("\n") if line)
        assert lines["127.0.0.1"] != "0" and lines[host_ip] == "0", probe.stdout + probe.stderr
        workers = [start_remote_worker(inside, env, elsewhere, elsewhere / f"worker{i}.log") for i in range(2)]
        random_writes(conn, random.Random(2), 300)
        pipeline.wait_caught_up(120)
        assert all(w.poll() is None for w in workers), (elsewhere / "worker0.log").read_text()[-2000:]
        assert relay.stats["applied_jobs"] > 0
        # the jobs were applied by the namespaced workers (nobody else runs a worker here)
        log_text = "".join((elsewhere / f"worker{i}.log").read_text() for i in range(2))
        assert "job done" in log_text
        client = connect_weaviate(weaviate.url)
        try:
            assert_stores_equal(client, db, settings.load_mapping(conn))
        finally:
            client.close()
    finally:
        stop_process_groups(workers, timeout=15)
        if pipeline is not None:
            pipeline.stop()
        weaviate.stop()
        redis_server.stop()
