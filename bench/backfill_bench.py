"""Backfill throughput vs a plain weaviate-client batch import, side by side in one run.

Starts its own local Weaviate + Redis, builds a table of N rows (text, ints, a real, a date,
a 32-d float32 vector BLOB; ~600 bytes of text per row), then measures:

(a) plain: ``to_object`` for every row (done before the clock starts, up to 200k rows, and
    reported as an extra row; streamed inside the timed loop beyond that), then ``collection.batch.fixed_size`` with
    the same uuids into a fresh collection — the physical limit for any pipeline;
(b) ours: ``init`` (capture + collections, not timed), then a relay process, W worker
    processes and ``sqlite-to-weaviate backfill --wait`` (a process) from start until the
    relay checkpoint passes the last backfilled key, i.e. every row is in Weaviate.

Prints a Markdown table: rows/s for both, the ratio (goal >= 0.8x), and the peak RSS of the
backfill process and of the relay process (psutil, sampled every 50 ms). Usage:

    python bench/backfill_bench.py [--rows 100000] [--workers 4] [--partitions 16] [--batch-size 200]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from sqlite_to_weaviate.initialize import initialize  # noqa: E402
from sqlite_to_weaviate.local.stack import LocalStack  # noqa: E402
from sqlite_to_weaviate.logs import configure_logging  # noqa: E402
from sqlite_to_weaviate.mapping import encode_vector  # noqa: E402
from sqlite_to_weaviate.operate.workers import worker_cli_env  # noqa: E402
from sqlite_to_weaviate.settings import Settings  # noqa: E402

SCHEMA = """
CREATE TABLE docs (
    id INTEGER PRIMARY KEY, title TEXT, body TEXT, views INTEGER, score REAL,
    created_at TIMESTAMP, embedding BLOB
);
"""
MAPPING = '[tables.docs]\nvector_column = "embedding"\n'
DIM = 32
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()


def build_db(path: Path, rows: int) -> None:
    rng = random.Random(1)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    for start in range(0, rows, 10_000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO docs VALUES (?,?,?,?,?,?,?)", [
            (i, f"document {i}", " ".join(rng.choice(WORDS) for _ in range(100)), rng.randrange(10**6),
             rng.random(), f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T12:00:00Z",
             encode_vector([rng.uniform(-1, 1) for _ in range(DIM)]))
            for i in range(start, min(rows, start + 10_000))
        ])
        conn.execute("COMMIT")
    conn.close()


def plain_import(settings: Settings, batch_size: int) -> tuple[float, float | None]:
    """(seconds of the batch import, seconds of reading + ``to_object`` beforehand or None if streamed)."""
    conn = sqlite3.connect(settings.sqlite_path)
    conn.row_factory = sqlite3.Row
    mapping = settings.load_mapping(conn)
    table = mapping.table("docs")
    name = table.collection + "Plain"
    client = settings.connect_weaviate()
    try:
        if client.collections.exists(name):
            client.collections.delete(name)
        client.collections.create(**table.with_collection(name).collection_config())
        collection = client.collections.use(name)
        total = conn.execute("SELECT count(*) FROM docs").fetchone()[0]
        convert_begin = time.perf_counter()
        objects = [table.to_object(dict(r)) for r in conn.execute(table.select_sql())] if total <= 200_000 else None
        convert_s = time.perf_counter() - convert_begin if objects is not None else None
        begin = time.perf_counter()
        with collection.batch.fixed_size(batch_size=batch_size) as batch:
            source = objects if objects is not None else (table.to_object(dict(r)) for r in conn.execute(table.select_sql()))
            for obj in source:
                batch.add_object(properties=obj.properties, uuid=obj.uuid, vector=obj.vector)
        seconds = time.perf_counter() - begin
        assert not collection.batch.failed_objects, collection.batch.failed_objects[:3]
        count = collection.aggregate.over_all(total_count=True).total_count
        assert count == total, (count, total)
        client.collections.delete(name)
        return seconds, convert_s
    finally:
        client.close()
        conn.close()


class PeakRss:
    """Sample the RSS of a process (and its children) until stopped; keep the peak."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(recursive=True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            self._stop.wait(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def pipeline_backfill(settings: Settings, workers: int, log_dir: Path) -> dict[str, float]:
    initialize(settings)
    env = worker_cli_env(settings, "WARNING")
    procs: list[subprocess.Popen] = []
    logs = []

    def spawn(*args: str, name: str) -> subprocess.Popen:
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in finally
        logs.append(log)
        proc = subprocess.Popen([sys.executable, "-m", "sqlite_to_weaviate", *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    try:
        for i in range(workers):
            spawn("worker", name=f"worker{i}")
        relay = spawn("relay", name="relay")
        time.sleep(3.0)  # workers and relay up (their start-up is not the backfill's cost)
        relay_rss = PeakRss(relay.pid)
        begin = time.perf_counter()
        backfill = spawn("backfill", "--wait", name="backfill")
        backfill_rss = PeakRss(backfill.pid)
        code = backfill.wait()
        seconds = time.perf_counter() - begin
        assert code == 0, f"backfill exited {code}; see {log_dir / 'backfill.log'}"
        return {"seconds": seconds, "backfill_rss_mb": backfill_rss.stop(), "relay_rss_mb": relay_rss.stop()}
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for log in logs:
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="s2w-backfill-bench-") as tmp:
        root = Path(tmp)
        db = root / "app.db"
        mapping_file = root / "mapping.toml"
        mapping_file.write_text(MAPPING)
        t0 = time.perf_counter()
        build_db(db, args.rows)
        print(f"built {args.rows} rows in {time.perf_counter() - t0:.1f}s ({db.stat().st_size / 2**20:.0f} MB)",
              file=sys.stderr)
        with LocalStack(root / "stack") as stack:
            settings = Settings(sqlite_path=db, weaviate_url=stack.weaviate.url, redis_url=stack.redis.url,
                                namespace="bench", mapping_file=mapping_file, partitions=args.partitions,
                                batch_size=args.batch_size, poll_interval=0.2)
            plain_s, convert_s = plain_import(settings, args.batch_size)
            print(f"plain import: {plain_s:.1f}s", file=sys.stderr)
            ours = pipeline_backfill(settings, args.workers, root)
    plain_rps = args.rows / plain_s
    ours_rps = args.rows / ours["seconds"]
    print(f"\nBackfill of {args.rows} rows ({DIM}-d vectors, ~700 B text/row); {args.workers} workers, "
          f"{args.partitions} partitions, batch {args.batch_size}; same server, same run.\n")
    print("| path | seconds | rows/s | vs plain | peak RSS backfill | peak RSS relay |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| plain `collection.batch.fixed_size` | {plain_s:.1f} | {plain_rps:.0f} | 1.00x | - | - |")
    if convert_s is not None:
        with_convert = plain_s + convert_s
        print(f"| plain, counting SQLite read + `to_object` | {with_convert:.1f} | {args.rows / with_convert:.0f} | "
              f"{plain_s / with_convert:.2f}x | - | - |")
    print(f"| backfill -> outbox -> relay -> {args.workers} workers | {ours['seconds']:.1f} | {ours_rps:.0f} | "
          f"{ours_rps / plain_rps:.2f}x | {ours['backfill_rss_mb']:.0f} MB | {ours['relay_rss_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
