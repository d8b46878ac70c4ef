"""``run``, the all-in-one sidecar, as a real subprocess: metrics and health served, SIGTERM
while the app writes loses nothing (restart, drain, both stores equal), workers are stopped."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

import psutil
import pytest

from examples.chat_app.seed import build_sample_database
from sqlite_to_weaviate.local.ports import free_port
from sqlite_to_weaviate.mapping import seed_preset_toml
from sqlite_to_weaviate.operate import readiness
from sqlite_to_weaviate.operate.metrics import METRIC_NAMES
from sqlite_to_weaviate.operate.verification import run_verification
from sqlite_to_weaviate.operate.worker_pool import worker_cli_env
from tests.support.pipeline import assert_stores_equal


def start_sidecar(settings, port: int, log, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sqlite_to_weaviate", "run", "--workers", "2", "--metrics-port", str(port),
         "--shutdown-grace", "3", *extra],
        env=worker_cli_env(settings, "INFO"), stdout=log, stderr=subprocess.STDOUT,
    )


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def endpoint_up(port: int) -> bool:
    try:
        return get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    except OSError:
        return False


def applied(port: int) -> float:
    for line in get(f"http://127.0.0.1:{port}/metrics")[1].decode().splitlines():
        if line.startswith("s2w_applied_total "):
            return float(line.split()[1])
    return 0.0


def caught_up(db) -> bool:
    from sqlite_to_weaviate.store.phase import get_phase
    from sqlite_to_weaviate.store.progress import read_progress

    conn = sqlite3.connect(db)
    try:
        return get_phase(conn) >= 3 and read_progress(conn).caught_up
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


class AppWriter(threading.Thread):
    """The app: inserts, updates and deletes messages until stopped."""

    def __init__(self, db) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.count = 0

    def run(self) -> None:
        rng = random.Random(5)
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        conv = [r[0] for r in conn.execute("SELECT id FROM conversations")]
        while not self.stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            i = self.count
            conn.execute("INSERT INTO messages (id, conversation_id, role, content, created_at) "
                         "VALUES (?, ?, 'user', ?, '2024-05-01 10:00:00')", (f"live-{i}", rng.choice(conv), f"m {i}"))
            if i % 3 == 0:
                conn.execute("UPDATE messages SET content = content || ' edited' WHERE id = ?",
                             (f"live-{rng.randrange(i + 1)}",))
            if i % 7 == 0:
                conn.execute("DELETE FROM messages WHERE id = ?", (f"live-{rng.randrange(i + 1)}",))
            conn.execute("COMMIT")
            self.count += 1
            time.sleep(0.005)
        conn.close()


@pytest.mark.timeout(300)
def test_run_sigterm_loses_nothing_and_serves_metrics(tmp_path, make_settings, weaviate_client, redis_client):
    db = tmp_path / "chat.db"
    build_sample_database(db, conversations=20, seed=9)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(seed_preset_toml())
    settings = make_settings(db, mapping_file=mapping)
    port = free_port()
    writer = AppWriter(db)
    writer.start()
    log = open(tmp_path / "sidecar.log", "ab")
    first = start_sidecar(settings, port, log)
    try:
        wait_for(lambda: endpoint_up(port), 60, "the metrics endpoint")
        wait_for(lambda: writer.count > 50, 30, "app writes")
        wait_for(lambda: "s2w_backfill_rows_total{" in get(f"http://127.0.0.1:{port}/metrics")[1].decode(), 30,
                 "backfill progress in /metrics")
        wait_for(lambda: applied(port) > 0, 60, "the first changes applied")
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        text = body.decode()
        for name in METRIC_NAMES:
            assert f"\n{name}" in "\n" + text, f"{name} missing from /metrics"
        assert "s2w_workers 4.0" in text  # --workers 2 and two live-only (--live-workers 2)
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status in (200, 503) and "healthy" in json.loads(body)
        children = psutil.Process(first.pid).children(recursive=True)
        assert len(children) >= 3
        first.send_signal(signal.SIGTERM)  # mid-writes, mid-backfill or mid-replay
        assert first.wait(timeout=90) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"workers left running: {alive}"
        time.sleep(0.5)  # the app keeps writing while no sidecar runs
        second = start_sidecar(settings, port, log, "--verify-every", "1", "--validation-sample", "20")
        try:
            wait_for(lambda: endpoint_up(port), 60, "the restarted sidecar")
            time.sleep(1.0)
            writer.stop.set()
            writer.join()
            wait_for(lambda: caught_up(db), 120, "the restarted sidecar to apply everything")
            status, body = get(f"http://127.0.0.1:{port}/healthz")
            assert status == 200, body
            # the periodic verify finds both stores equal with the gate open: phase 4
            wait_for(lambda: "s2w_phase 4.0" in get(f"http://127.0.0.1:{port}/metrics")[1].decode(), 60, "phase 4")
            text = get(f"http://127.0.0.1:{port}/metrics")[1].decode()
            assert "s2w_outbox_depth 0.0" in text and "s2w_verify_differences 0.0" in text
            assert readiness(settings).ready
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=90) == 0
    finally:
        writer.stop.set()
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
        log.close()
    summary = run_verification(settings, sample=50)
    assert summary.clean, summary
    conn = sqlite3.connect(db)
    assert summary.checked == sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (
        "conversations", "messages", "documents", "document_chunks", "agent_interactions", "multimodal_content"))
    assert writer.count > 100


def test_workers_die_with_a_killed_supervisor(tmp_path, make_settings, redis_client):
    """A SIGKILLed sidecar leaves no orphan worker applying jobs behind the next sidecar's back."""
    settings = make_settings(tmp_path / "app.db")
    code = (
        "import sys, time\n"
        "from sqlite_to_weaviate.settings import Settings\n"
        "from sqlite_to_weaviate.operate.worker_pool import WorkerPool\n"
        f"s = Settings(**{{'sqlite_path': {str(settings.sqlite_path)!r}, 'redis_url': {settings.redis_url!r},"
        f" 'weaviate_url': {settings.weaviate_url!r}, 'namespace': {settings.namespace!r}}})\n"
        "pool = WorkerPool(s, 2).start()\n"
        "print(*[p.pid for p in pool.procs], flush=True)\n"
        "time.sleep(600)\n"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = supervisor.stdout.readline()
        while not line.replace(" ", "").strip().isdigit():  # skip log lines
            line = supervisor.stdout.readline()
        pids = [int(p) for p in line.split()]
        workers = [psutil.Process(pid) for pid in pids]
        time.sleep(3)
        assert all(w.is_running() for w in workers)
        supervisor.kill()
        supervisor.wait()
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, f"orphan workers: {alive}"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


@pytest.mark.timeout(300)
def test_run_verifies_itself_and_repairs_what_differs(tmp_path, make_settings, weaviate_client, redis_client):
    """Objects changed behind the pipeline's back (deleted, edited, invented) are found by the
    sidecar's own periodic verify, repaired through the outbox, counted and logged by key."""
    from weaviate.classes.data import DataObject

    db = tmp_path / "chat.db"
    build_sample_database(db, conversations=10, seed=4)
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(seed_preset_toml())
    settings = make_settings(db, mapping_file=mapping_file)
    port = free_port()
    log_path = tmp_path / "sidecar.log"
    log = open(log_path, "ab")
    proc = start_sidecar(settings, port, log, "--verify-every", "3", "--validation-sample", "5")
    try:
        wait_for(lambda: endpoint_up(port), 60, "the metrics endpoint")
        wait_for(lambda: caught_up(db), 120, "the backfill to be applied")
        wait_for(lambda: "s2w_phase 4.0" in get(f"http://127.0.0.1:{port}/metrics")[1].decode(), 90,
                 "a first clean verify (phase 4)")
        conn = sqlite3.connect(db)
        mapping = settings.load_mapping(conn)
        table = mapping.table("messages")
        collection = weaviate_client.collections.use(table.collection)
        ids = [r[0] for r in conn.execute("SELECT id FROM messages ORDER BY id LIMIT 2")]
        gone, edited = (table.uuid_for_key((i,)) for i in ids)
        collection.data.delete_by_id(gone)                                     # missing
        stored = collection.query.fetch_object_by_id(edited)
        collection.data.update(uuid=edited, properties={"content": "edited behind our back",  # stale
                                                        "s2wContentHash": "0" * 64})
        invented = table.uuid_for_key(("no-such-message",))
        collection.data.insert_many([DataObject(properties=dict(stored.properties), uuid=invented)])  # extra
        wait_for(lambda: _metric(port, "s2w_verify_repaired_total") >= 3, 90, "the sidecar to repair 3 objects")
        assert _metric(port, "s2w_verify_differences_found_total") >= 3
        assert collection.data.exists(gone) and not collection.data.exists(invented)
        assert collection.query.fetch_object_by_id(edited).properties["content"] != "edited behind our back"
        assert_stores_equal(weaviate_client, db, mapping)
        text = log_path.read_text()
        assert "verify found differences" in text and ids[0] in text and ids[1] in text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
        log.close()


def _metric(port: int, name: str) -> float:
    for line in get(f"http://127.0.0.1:{port}/metrics")[1].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
