"""The end-to-end fault-injection soak: the whole system under live writes and random faults.

Two processes of the example app write at a steady rate (one through the SQLAlchemy ORM
with capture hooks, one through raw sqlite3), a relay, several workers and a backfill run
as separate processes, and a seeded fault injector, at random moments:

* SIGKILLs the relay, a worker, the backfill (each is restarted, as a supervisor would);
* restarts Redis with empty memory;
* stops Weaviate and starts it again, or SIGKILLs it and starts it again on the same data;
* freezes a worker (SIGSTOP) past its lease, then lets it run on (a zombie);
* writes a row the pipeline refuses (a vector of the wrong length), waits for it to reach the
  dead-letter table, fixes the row, and retries the dead letters;
* compound: a first fault that leaves work to re-send (a killed or frozen worker, a killed
  Weaviate, a Redis wipe), then, while that re-send is still pending, a second fault of any
  kind (the relay killed, Redis wiped, Weaviate killed, a worker or the backfill killed).

At the end the writers stop and the pipeline drains. Then the soak does what ``run`` does
by itself after a fault: one verify that repairs. That pass must find no missing, extra or
stale object (the pipeline's own ordering guarantees those); it may find objects that
Weaviate stored but lost from its index across a crash ("unindexed", see
``sqlite_to_weaviate.weaviate_deletes``), which it repairs. After that, both the verifier
and an independent comparison (direct SQLite reads vs direct Weaviate reads, every object
also looked up through the index) must report zero differences. Every fault is logged with its time; the caller asserts each kind fired.
Servers are private to the soak (their own ports and dirs), never the test session's.

``python -m tests.soak --duration 1800 --seed 1`` runs the long version.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.local.redis_server import RedisServer
from sqlite_to_weaviate.local.weaviate_server import WeaviateServer
from sqlite_to_weaviate.mapping import encode_vector, seed_preset_toml
from sqlite_to_weaviate.operate.worker_pool import worker_cli_env
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.store import dead_letters
from tests.support.pipeline import stop_process_groups

FAULT_KINDS = ("kill_relay", "kill_worker", "kill_backfill", "redis_wipe", "weaviate_restart", "weaviate_kill",
               "zombie_worker", "rejected_row", "compound")
# First faults of a compound: each leaves in-flight work the relay must re-send later.
COMPOUND_FIRST = ("kill_worker", "zombie_worker", "weaviate_kill", "redis_wipe")
# Second faults of a compound, injected while the first one's re-send is pending.
COMPOUND_SECOND = ("kill_relay", "redis_wipe", "weaviate_kill", "kill_worker", "kill_backfill")


@dataclass
class SoakResult:
    duration_s: float
    faults: list[tuple[float, str, str]] = field(default_factory=list)
    writes: int = 0
    rows_compared: int = 0
    verify_summary: dict[str, Any] = field(default_factory=dict)
    lag_timeline: list[tuple[float, float]] = field(default_factory=list)  # (t, outbox age of oldest change)
    self_check: dict[str, int] = field(default_factory=dict)  # what the repairing verify found, by kind

    def kinds(self) -> set[str]:
        return {kind for _, kind, _ in self.faults}


class Soak:
    def __init__(self, root: Path, *, duration: float, seed: int, rate: float = 25.0, workers: int = 3,
                 conversations: int = 150, fault_every: float = 6.0, kinds: tuple[str, ...] | None = None,
                 backfill_rate: int = 400) -> None:
        self.root = root
        self.duration = duration
        self.rng = random.Random(seed)
        self.seed = seed
        self.rate = rate
        self.worker_count = workers
        self.conversations = conversations
        self.fault_every = fault_every
        self.db = root / "chat.db"
        self.weaviate = WeaviateServer(root / "weaviate")
        self.redis = RedisServer(root / "redis")
        self.procs: dict[str, subprocess.Popen] = {}
        self.workers: list[subprocess.Popen] = []
        self.result = SoakResult(duration_s=duration)
        self.t0 = 0.0
        self._stop = threading.Event()
        self._weaviate_lock = threading.Lock()  # one Weaviate fault at a time, even in a compound
        self._unfixed: list[str] = []  # rejected rows that reached the dead letters too late to fix in time
        self.kinds = tuple(kinds) if kinds else FAULT_KINDS
        self.backfill_rate = backfill_rate
        self.settings: Settings | None = None

    # --------------------------------------------------------------- processes
    def _env(self, log_level: str = "WARNING") -> dict[str, str]:
        assert self.settings is not None
        return worker_cli_env(self.settings, log_level)

    def _spawn(self, name: str, *args: str, log_level: str = "WARNING") -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - child owns it
        return subprocess.Popen([sys.executable, "-m", *args], env=self._env(log_level), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=Path(__file__).parents[2])

    # The relay and the workers log each job (DEBUG: its token, and the objects a worker
    # wrote), so that a failing soak can say what happened to each object that differs.
    def _start_relay(self) -> None:
        self.procs["relay"] = self._spawn("relay", "sqlite_to_weaviate", "relay", log_level="DEBUG")

    def _start_worker(self) -> None:
        self.workers.append(self._spawn(f"worker{len(self.workers)}", "sqlite_to_weaviate", "worker",
                                        log_level="DEBUG"))

    def _start_backfill(self) -> None:
        self.procs["backfill"] = self._spawn("backfill", "sqlite_to_weaviate", "backfill", "--page-size", "200",
                                             "--rows-per-second", str(self.backfill_rate))

    def _start_traffic(self) -> None:
        for mode in ("orm", "raw"):
            self.procs[f"traffic-{mode}"] = self._spawn(
                f"traffic-{mode}", "examples.chat_app.traffic", "--db", str(self.db), "--rate", str(self.rate / 2),
                "--duration", str(self.duration), "--mode", mode, "--seed", str(self.seed + (mode == "raw")),
            )

    def _alive_workers(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def _note(self, kind: str, detail: str = "") -> None:
        at = round(time.monotonic() - self.t0, 2)
        self.result.faults.append((at, kind, detail))
        print(f"[soak {at:7.2f}s] fault {kind} {detail}", flush=True)

    # --------------------------------------------------------------- faults
    def _kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self._note(f"kill_{name}", f"pid {proc.pid} exit {proc.returncode}")
        {"relay": self._start_relay, "backfill": self._start_backfill}[name]()

    def fault_kill_relay(self) -> None:
        self._kill("relay")

    def fault_kill_backfill(self) -> None:
        proc = self.procs.get("backfill")
        if proc is not None and proc.poll() is None:
            self._kill("backfill")
        else:
            self._start_backfill()  # it had finished: a restart re-checks and exits quickly
            time.sleep(self.rng.uniform(0.2, 1.0))
            self._kill("backfill")

    def fault_kill_worker(self) -> None:
        alive = self._alive_workers()
        if not alive:
            return
        victim = self.rng.choice(alive)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        self._note("kill_worker", f"pid {victim.pid}")
        self._start_worker()

    def fault_redis_wipe(self) -> None:
        self.redis.restart(keep_data=False)
        self._note("redis_wipe", f"port {self.redis.port}")
        time.sleep(0.5)
        self._replace_dead_workers()

    def fault_weaviate_restart(self) -> None:
        with self._weaviate_lock:
            self.weaviate.stop()
            self._note("weaviate_restart", "stopped")
            time.sleep(self.rng.uniform(2.0, 5.0))
            self.weaviate.start()

    def fault_weaviate_kill(self) -> None:
        """SIGKILL (a crash, not a stop): requests in flight die with it; restart on the same data."""
        down_for = self.rng.uniform(3.0, 8.0)
        with self._weaviate_lock:
            self.weaviate.kill()
            self._note("weaviate_kill", f"down for {down_for:.1f}s")
            time.sleep(down_for)
            self.weaviate.start()

    def fault_compound(self) -> None:
        """A second fault while the relay still owes a re-send for the first one."""
        first = self.rng.choice(COMPOUND_FIRST)
        second = self.rng.choice([k for k in COMPOUND_SECOND if k != first or k == "kill_worker"])
        runner = threading.Thread(target=getattr(self, f"fault_{first}"), name=f"compound-{first}", daemon=True)
        runner.start()
        pending = self._wait_resend_pending(timeout=self.settings.lease_seconds * 4 if self.settings else 16)
        getattr(self, f"fault_{second}")()
        self._note("compound", f"{first} then {second} (re-send pending: {pending})")
        runner.join(120)

    def _wait_resend_pending(self, timeout: float) -> bool:
        """True once the relay reports keys waiting to be re-sent (its published snapshot)."""
        import redis

        client = redis.Redis.from_url(self.redis.url)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    raw = client.get("soak:relay-status")
                except redis.RedisError:
                    raw = None
                if raw and json.loads(raw).get("resweeps"):
                    return True
                time.sleep(0.1)
            return False
        finally:
            client.close()

    def fault_zombie_worker(self) -> None:
        alive = self._alive_workers()
        if not alive:
            return
        victim = self.rng.choice(alive)
        os.killpg(victim.pid, signal.SIGSTOP)
        assert self.settings is not None
        self._note("zombie_worker", f"pid {victim.pid} stopped for {self.settings.lease_seconds * 2:.0f}s")
        self._start_worker()  # keep capacity while it sleeps
        time.sleep(self.settings.lease_seconds * 2)
        os.killpg(victim.pid, signal.SIGCONT)

    def fault_rejected_row(self) -> None:
        """A chunk whose vector has the wrong length: refused (by the mapping's vector length,
        or by Weaviate), it becomes a dead letter, is fixed and retried.

        Only once the chunks' vector index holds a vector, so that the fault tests the
        dead-letter path whichever of the two refuses it (the mapping's check of the first
        vector reaching an empty collection has its own tests, tests/unit/test_vector_length.py
        and tests/integration/test_refused_rows.py).
        """
        deadline = time.monotonic() + 60
        while not self._chunk_vectors_indexed():
            if time.monotonic() >= deadline or self._stop.is_set():
                # its own kind: a skipped injection must not count as the fault having fired
                self._note("rejected_row_skipped", "no chunk vector indexed within 60 s")
                return
            time.sleep(1)
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            doc = conn.execute("SELECT id FROM documents ORDER BY random() LIMIT 1").fetchone()
            if doc is None:
                return
            chunk_id = f"soak-bad-{self.rng.randrange(10**9)}"
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO document_chunks(id, document_id, chunk_index, content, embedding) VALUES (?, ?, ?, ?, ?)",
                (chunk_id, doc[0], 10_000 + self.rng.randrange(10**6), "a chunk with a wrong-sized vector",
                 encode_vector([0.5, 0.25, 0.125])),
            )
            conn.execute("COMMIT")
            if not self._fix_rejected(conn, chunk_id, timeout=60):
                # behind a long backlog (faults, the backfill): fixed at the end, never forgotten
                self._unfixed.append(chunk_id)
                self._note("rejected_row", f"{chunk_id}: not dead-lettered within 60s, fixed at the end")
        finally:
            conn.close()

    def _chunk_vectors_indexed(self) -> bool:
        assert self.settings is not None
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            collection = self.settings.load_mapping(conn).table("document_chunks").collection
        finally:
            conn.close()
        client = self.settings.connect_weaviate()
        try:
            objects = client.collections.use(collection).query.fetch_objects(limit=20, include_vector=True).objects
            return any(o.vector for o in objects)
        except Exception:  # noqa: BLE001 - Weaviate down (a fault in progress): inject later
            return False
        finally:
            client.close()

    def _fix_rejected(self, conn: sqlite3.Connection, chunk_id: str, timeout: float) -> bool:
        """Once the bad row is a dead letter: give it a good vector and retry the dead letters."""
        deadline = time.monotonic() + timeout
        while not any(d.key == (chunk_id,) for d in dead_letters.list_letters(conn)):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        reason = next(d.reason for d in dead_letters.list_letters(conn) if d.key == (chunk_id,))
        self._note("rejected_row", f"{chunk_id}: {reason[:80]}")
        good = conn.execute("SELECT embedding FROM document_chunks WHERE embedding IS NOT NULL "
                            "AND length(embedding) > 12 LIMIT 1").fetchone()[0]
        conn.execute("UPDATE document_chunks SET embedding = ? WHERE id = ?", (good, chunk_id))
        dead_letters.retry(conn, table="document_chunks")
        return True

    def _replace_dead_workers(self) -> None:
        for worker in list(self.workers):
            if worker.poll() is not None:
                self.workers.remove(worker)
                self._start_worker()

    def _inject_faults(self) -> None:
        kinds = list(self.kinds)
        order: list[str] = []
        while not self._stop.wait(self.rng.uniform(self.fault_every * 0.5, self.fault_every * 1.5)):
            if not order:  # every kind once per round, in a seeded random order
                order = kinds[:]
                self.rng.shuffle(order)
            kind = order.pop()
            try:
                getattr(self, f"fault_{kind}")()
            except Exception as exc:  # noqa: BLE001 - a failed injection is recorded, the soak goes on
                self._note("injector_error", f"{kind}: {type(exc).__name__}: {exc}")
            self._replace_dead_workers()
            if self.procs["relay"].poll() is not None:
                self._start_relay()

    def _sample_lag(self) -> None:
        """The live lag (age of the oldest unapplied live change) once a second."""
        from sqlite_to_weaviate.store.progress import read_progress

        conn = sqlite3.connect(self.db, timeout=30)
        try:
            while not self._stop.wait(1.0):
                lag = read_progress(conn).live_lag_s
                self.result.lag_timeline.append((round(time.monotonic() - self.t0, 1), lag or 0.0))
        finally:
            conn.close()

    # --------------------------------------------------------------- run
    def run(self) -> SoakResult:
        from examples.chat_app.seed import build_sample_database
        from sqlite_to_weaviate.initialize import initialize

        self.root.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        self.weaviate.start()
        try:
            build_sample_database(self.db, conversations=self.conversations, seed=self.seed)
            mapping_file = self.root / "mapping.toml"
            mapping_file.write_text(seed_preset_toml())
            self.settings = Settings(
                sqlite_path=self.db, weaviate_url=self.weaviate.url, redis_url=self.redis.url, namespace="soak",
                mapping_file=mapping_file, lease_seconds=4.0, job_timeout=30, retry_delay=0.3, backoff_max=3.0,
                max_retries=2, poll_interval=0.3, partitions=8, batch_size=100,
            )
            initialize(self.settings)
            self.t0 = time.monotonic()
            self._start_relay()
            for _ in range(self.worker_count):
                self._start_worker()
            self._start_traffic()
            self._start_backfill()
            injector = threading.Thread(target=self._inject_faults, name="faults", daemon=True)
            sampler = threading.Thread(target=self._sample_lag, name="lag", daemon=True)
            injector.start()
            sampler.start()
            for mode in ("orm", "raw"):
                self.procs[f"traffic-{mode}"].wait(self.duration + 120)
            self._stop.set()
            injector.join(120)
            sampler.join(10)
            self._finish()
            return self.result
        finally:
            self._stop.set()
            self._shutdown()

    def _finish(self) -> None:
        """Let the backfill complete, drain, then compare both stores two independent ways."""
        from sqlite_to_weaviate.backfill import BackfillOptions, backfill
        from sqlite_to_weaviate.verify import verify
        from tests.support.pipeline import assert_stores_equal

        assert self.settings is not None
        backfill_proc = self.procs.get("backfill")
        if backfill_proc is not None:
            backfill_proc.wait(300)
        backfill(self.settings, BackfillOptions())  # completes a backfill the last kill interrupted
        self._replace_dead_workers()
        if self.procs["relay"].poll() is not None:
            self._start_relay()
        self._wait_drained(300)
        if self._unfixed:
            conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
            try:
                for chunk_id in self._unfixed:
                    assert self._fix_rejected(conn, chunk_id, timeout=120), f"{chunk_id} never dead-lettered"
            finally:
                conn.close()
            self._wait_drained(300)
        conn = sqlite3.connect(self.db)
        try:
            assert dead_letters.count(conn) == 0, dead_letters.list_letters(conn)
            self.result.writes = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            mapping = self.settings.load_mapping(conn)
        finally:
            conn.close()
        check = verify(self.settings, sample=100, repair=True)  # the sidecar's own check after a fault
        kinds = ("missing", "extra", "stale", "unindexed", "sample_mismatches", "refused", "unsettled")
        self.result.self_check = {k: sum(getattr(t, k).total for t in check.tables.values()) for k in kinds}
        self.result.self_check["repaired"] = sum(t.repaired for t in check.tables.values())
        print(f"[soak] self-check: {self.result.self_check}", flush=True)
        ordering = {k: v for k, v in self.result.self_check.items() if k not in ("unindexed", "repaired") and v}
        assert not ordering, (f"the pipeline left differences: {ordering}: {_what_differs(check)}\n"
                              f"{trace_objects(self.root, _differing_uuids(check))}")
        assert check.repair_failures == 0, _what_differs(check)
        self._wait_drained(300)
        report = verify(self.settings, sample=100)
        self.result.verify_summary = report.to_json() if hasattr(report, "to_json") else {"report": str(report)}
        assert report.clean, f"verifier found differences: {json.dumps(self.result.verify_summary)[:2000]}"
        client = self.settings.connect_weaviate()
        try:
            self.result.rows_compared = assert_stores_equal(client, self.db, mapping)
        finally:
            client.close()

    def _wait_drained(self, timeout: float) -> None:
        """Drained: checkpoint at the newest outbox row and the relay holds no work (its snapshot)."""
        import redis

        from sqlite_to_weaviate.store.progress import read_progress

        assert self.settings is not None
        conn = sqlite3.connect(self.db, timeout=30)
        client = redis.Redis.from_url(self.redis.url)
        try:
            deadline = time.monotonic() + timeout
            caught_up_since: float | None = None
            while time.monotonic() < deadline:
                now = time.time()
                progress = read_progress(conn)
                caught_up_since = (caught_up_since or now) if progress.caught_up else None
                raw = client.get("soak:relay-status")
                snap = json.loads(raw) if raw else None
                if (caught_up_since is not None and snap is not None and snap["at"] > caught_up_since
                        and not snap["pending"] and not snap["inflight"] and not snap["resweeps"]
                        and not snap["unacked"]):
                    return
                time.sleep(0.5)
            raise AssertionError(f"pipeline did not drain in {timeout}s ({progress}, relay {snap})")
        finally:
            conn.close()
            client.close()

    def _shutdown(self) -> None:
        stop_process_groups(list(self.procs.values()) + self.workers, timeout=20)
        self.weaviate.stop()
        self.redis.stop()


def _differing_uuids(check: Any) -> list[str]:
    from sqlite_to_weaviate.verify.report import KINDS

    found = []
    for table in check.tables.values():
        for kind in (*KINDS, "unsettled"):
            found += [str(item.get("uuid")) for item in getattr(table, kind).to_json().get("items", [])
                      if isinstance(item, dict) and item.get("uuid")]
    return found[:5]


def trace_objects(root: Path, uuids: list[str]) -> str:
    """Every job that carried one of ``uuids`` (from the workers' DEBUG logs), with what the relay
    logged about it and the faults around it: where an object went missing."""
    jobs: dict[str, list[str]] = {}
    for path in sorted(root.glob("worker*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"job objects"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            for uuid in uuids:
                roles = [r for r in ("upserts", "deletes", "replace") if uuid in (event.get(r) or ())]
                if roles:
                    jobs.setdefault(uuid, []).append(
                        f"  {event.get('timestamp')} {path.stem} job {event.get('token')} ({event.get('batch_id')}) "
                        f"{'+'.join(roles)} -> {event.get('outcome')} retried={event.get('retried')}")
    relay_lines = (root / "relay.log").read_text(errors="replace").splitlines() if (root / "relay.log").exists() else []
    out = []
    for uuid in uuids:
        out.append(f"object {uuid}: {len(jobs.get(uuid, []))} job(s)")
        for job_line in jobs.get(uuid, []):
            out.append(job_line)
            batch = job_line.split("(")[1].split(")")[0]
            out += [f"    relay: {line[:300]}" for line in relay_lines if batch in line]
    return "\n".join(out)


def _what_differs(check: Any) -> str:
    """The differences of a verify report, table by table, with their keys: what a failing
    soak must name (the full report is mostly empty tables and gets cut short)."""
    from sqlite_to_weaviate.verify.report import KINDS

    found = {}
    for name, table in check.tables.items():
        kinds = {kind: getattr(table, kind).to_json() for kind in (*KINDS, "unsettled")
                 if getattr(table, kind).total}
        failed = table.repair_failed.to_json() if table.repair_failed.total else None
        if kinds or failed:
            found[name] = {**kinds, **({"repair_failed": failed} if failed else {})}
    return json.dumps({"exit_code": check.exit_code(), "outbox_seq": [check.outbox_seq_start, check.outbox_seq_end],
                       "tables": found}, default=str)
