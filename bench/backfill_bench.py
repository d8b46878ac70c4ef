"""Backfill throughput vs a plain weaviate-client batch import, side by side in one run.

Starts its own local Weaviate + Redis and, for each table size, builds a table of N rows
(text, ints, a real, a date, a 32-d float32 vector BLOB; ~700 bytes of text per row), then
runs R rounds of two imports of the same rows into the same server:

(a) plain: ``to_object`` for every row (done before the clock starts, up to 2M rows, and
    reported as an extra column; streamed inside the timed loop beyond that), then
    ``collection.batch.fixed_size`` with the same uuids into a fresh collection: the
    physical limit for any pipeline;
(b) ours: ``init`` (capture + collections, not timed) on a fresh copy of the database,
    then a relay process, W worker processes and ``sqlite-to-weaviate backfill --wait``
    (a process) from start until every backfilled key is acknowledged by Weaviate.

Rounds alternate which import goes first (the server's background work after one import
would otherwise always burden the same side). Prints Markdown tables: per-size medians of
rows/s and of the per-round ratio (goal >= 0.8x), the peak RSS of the backfill and relay
processes (psutil, sampled every 50 ms; goal: 1M within 1.2x of 100k), and the CPU seconds
each process used, which shows where a 2-core machine's time goes. Usage:

    python bench/backfill_bench.py [--rows 100000,1000000] [--rounds 3,1] [--workers 2]
        [--partitions 16] [--batch-size 200]
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from statistics import median
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from sqlite_to_weaviate.initialize import initialize  # noqa: E402
from sqlite_to_weaviate.local import process  # noqa: E402
from sqlite_to_weaviate.local.stack import LocalStack  # noqa: E402
from sqlite_to_weaviate.logs import configure_logging  # noqa: E402
from sqlite_to_weaviate.mapping import encode_vector  # noqa: E402
from sqlite_to_weaviate.operate.worker_pool import worker_cli_env  # noqa: E402
from sqlite_to_weaviate.mapping.collections import collection_config
from sqlite_to_weaviate.settings import Settings  # noqa: E402

SCHEMA = """
CREATE TABLE docs (
    id INTEGER PRIMARY KEY, title TEXT, body TEXT, views INTEGER, score REAL,
    created_at TIMESTAMP, embedding BLOB
);
"""
MAPPING = '[tables.docs]\nvector_column = "embedding"\n'
DIM = 32
PRECONVERT_MAX = 2_000_000  # ~2.5 KB of memory per converted object; beyond this, converted while importing
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()


def build_db(path: Path, rows: int, words: int = 100) -> None:
    """``rows`` docs rows (seeded: every run builds the same file) of ``words`` words and a 32-d vector."""
    rng = random.Random(1)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    for start in range(0, rows, 10_000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO docs VALUES (?,?,?,?,?,?,?)", [
            (i, f"document {i}", " ".join(rng.choice(WORDS) for _ in range(words)), rng.randrange(10**6),
             rng.random(), f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T12:00:00Z",
             encode_vector([rng.uniform(-1, 1) for _ in range(DIM)]))
            for i in range(start, min(rows, start + 10_000))
        ])
        conn.execute("COMMIT")
    conn.close()


def plain_import(settings: Settings, batch_size: int, weaviate_pid: int) -> tuple[float, float | None, dict[str, float]]:
    """(seconds of the batch import, seconds of reading + ``to_object`` beforehand or None if
    streamed, CPU seconds of the importing process and of Weaviate during the import)."""
    conn = sqlite3.connect(settings.sqlite_path)
    conn.row_factory = sqlite3.Row
    mapping = settings.load_mapping(conn)
    table = mapping.table("docs")
    name = table.collection + "Plain"
    client = settings.connect_weaviate()
    try:
        if client.collections.exists(name):
            client.collections.delete(name)
        client.collections.create(**collection_config(table.with_collection(name)))
        collection = client.collections.use(name)
        total = conn.execute("SELECT count(*) FROM docs").fetchone()[0]
        convert_begin = time.perf_counter()
        objects = [table.to_object(dict(r)) for r in conn.execute(table.select_sql())] if total <= PRECONVERT_MAX else None
        convert_s = time.perf_counter() - convert_begin if objects is not None else None
        weaviate_cpu = PeakRss(weaviate_pid)
        cpu_begin = time.process_time()
        begin = time.perf_counter()
        with collection.batch.fixed_size(batch_size=batch_size) as batch:
            source = objects if objects is not None else (table.to_object(dict(r)) for r in conn.execute(table.select_sql()))
            for obj in source:
                batch.add_object(properties=obj.properties, uuid=obj.uuid, vector=obj.vector)
        seconds = time.perf_counter() - begin
        cpu = {"importer": time.process_time() - cpu_begin}
        weaviate_cpu.stop()
        cpu["weaviate"] = weaviate_cpu.cpu
        assert not collection.batch.failed_objects, collection.batch.failed_objects[:3]
        count = collection.aggregate.over_all(total_count=True).total_count
        assert count == total, (count, total)
        client.collections.delete(name)
        return seconds, convert_s, cpu
    finally:
        client.close()
        conn.close()


class PeakRss:
    """Sample the RSS of a process (and its children) until stopped; keep the peak RSS and
    the CPU seconds it used meanwhile (sampled, so a process that exits keeps its last figure)."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._cpu_start = self._cpu_now() or 0.0
        self.cpu = 0.0
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
            cpu = self._cpu_now()
            if cpu is not None:
                self.cpu = cpu - self._cpu_start
            self._stop.wait(0.05)

    def _cpu_now(self) -> float | None:
        try:
            times = self.proc.cpu_times()
        except psutil.Error:
            return None
        return times.user + times.system

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def pipeline_backfill(settings: Settings, workers: int, log_dir: Path, service_pids: dict[str, int]) -> dict[str, Any]:
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
        meters = {"relay": PeakRss(relay.pid)}
        meters.update({f"worker{i}": PeakRss(proc.pid) for i, proc in enumerate(procs[:workers])})
        meters.update({name: PeakRss(pid) for name, pid in service_pids.items()})
        begin = time.perf_counter()
        backfill = spawn("backfill", "--wait", name="backfill")
        meters["backfill"] = PeakRss(backfill.pid)
        code = backfill.wait()
        seconds = time.perf_counter() - begin
        assert code == 0, f"backfill exited {code}; see {log_dir / 'backfill.log'}"
        peaks = {name: meter.stop() for name, meter in meters.items()}
        cpu = {name: meter.cpu for name, meter in meters.items() if not name.startswith("worker")}
        cpu["workers"] = sum(meter.cpu for name, meter in meters.items() if name.startswith("worker"))
        return {"seconds": seconds, "backfill_rss_mb": peaks["backfill"], "relay_rss_mb": peaks["relay"], "cpu": cpu}
    finally:
        for proc in procs:
            process.stop(proc, timeout=30)  # SIGTERM to the group, then SIGKILL
        for log in logs:
            log.close()


def drop_collections(settings: Settings) -> None:
    """Delete what one round of ``ours`` created, so every round starts from an empty server."""
    client = settings.connect_weaviate()
    try:
        for table in settings.load_mapping(sqlite3.connect(settings.sqlite_path)).tables.values():
            if client.collections.exists(table.collection):
                client.collections.delete(table.collection)
    finally:
        client.close()


def one_size(stack: LocalStack, root: Path, rows: int, rounds: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    template = root / f"template-{rows}.db"
    t0 = time.perf_counter()
    build_db(template, rows)
    print(f"built {rows} rows in {time.perf_counter() - t0:.1f}s ({template.stat().st_size / 2**20:.0f} MB)",
          file=sys.stderr)
    services = {"weaviate": stack.weaviate.pid, "redis": stack.redis.pid}
    assert all(services.values()), "local servers not running"
    results = []
    for number in range(rounds):
        db = root / f"app-{rows}-{number}.db"
        shutil.copyfile(template, db)
        settings = Settings(sqlite_path=db, weaviate_url=stack.weaviate.url, redis_url=stack.redis.url,
                            namespace=f"bench{rows}r{number}", mapping_file=root / "mapping.toml",
                            partitions=args.partitions, batch_size=args.batch_size, poll_interval=0.2)
        result: dict[str, Any] = {}
        sides = ["plain", "ours"] if number % 2 == 0 else ["ours", "plain"]
        for side in sides:
            if side == "plain":
                result["plain_s"], result["convert_s"], result["plain_cpu"] = plain_import(
                    settings, args.batch_size, services["weaviate"])
            else:
                result.update(pipeline_backfill(settings, args.workers, root, services))
                drop_collections(settings)
        db.unlink()
        for suffix in ("-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        result["ratio"] = result["plain_s"] / result["seconds"]
        print(f"{rows} rows, round {number + 1} ({' first, '.join(sides)} second): plain {result['plain_s']:.1f}s, "
              f"ours {result['seconds']:.1f}s, {result['ratio']:.2f}x, peak RSS backfill "
              f"{result['backfill_rss_mb']:.0f} MB, relay {result['relay_rss_mb']:.0f} MB", file=sys.stderr)
        results.append(result)
    template.unlink()
    return results


def print_tables(sizes: dict[int, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\nBackfill vs plain import ({DIM}-d vectors, ~700 B text/row); {args.workers} workers, "
          f"{args.partitions} partitions, batch {args.batch_size}; same server, same run; "
          "medians over the rounds, which alternate which import goes first.\n")
    print("| rows | rounds | plain rows/s | plain incl. read + `to_object` | backfill rows/s | backfill vs plain "
          "| (range) | peak RSS backfill | peak RSS relay |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for rows, results in sizes.items():
        plain = median(r["plain_s"] for r in results)
        ours = median(r["seconds"] for r in results)
        ratios = [r["ratio"] for r in results]
        converts = [r["convert_s"] for r in results if r["convert_s"] is not None]
        with_convert = f"{rows / (plain + median(converts)):.0f}" if converts else "(streamed)"
        print(f"| {rows:,} | {len(results)} | {rows / plain:.0f} | {with_convert} | {rows / ours:.0f} | **{median(ratios):.2f}x** | "
              f"{min(ratios):.2f}-{max(ratios):.2f} | {max(r['backfill_rss_mb'] for r in results):.0f} MB | "
              f"{max(r['relay_rss_mb'] for r in results):.0f} MB |")
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        for who in ("backfill", "relay"):
            a = max(r[f"{who}_rss_mb"] for r in sizes[small])
            b = max(r[f"{who}_rss_mb"] for r in sizes[large])
            print(f"\nPeak RSS of the {who} at {large:,} rows is {b / a:.2f}x its peak at {small:,} (goal <= 1.2x).")
    names = sorted({n for results in sizes.values() for r in results for n in (*r["plain_cpu"], *r["cpu"])})
    print("\nCPU seconds per 10k rows, by process (medians; 2 cores = 2 CPU-seconds per second):\n")
    print("| rows | path | " + " | ".join(names) + " |")
    print("|---:|---|" + "---:|" * len(names))
    for rows, results in sizes.items():
        for label, field_name in (("plain", "plain_cpu"), ("backfill", "cpu")):
            cells = []
            for n in names:
                values = [r[field_name][n] for r in results if n in r[field_name]]
                cells.append(f"{median(values) * 10_000 / rows:.2f}" if values else "-")
            print(f"| {rows:,} | {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="100000", help="comma-separated table sizes, e.g. 100000,1000000")
    parser.add_argument("--rounds", default="3",
                        help="rounds per size: one number for all, or one per --rows entry (e.g. 3,1)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (the sidecar's default)")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    configure_logging("WARNING")
    # SIGTERM unwinds like Ctrl-C, so the local servers are stopped (an orphaned Weaviate
    # still indexing would load the machine for the next run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes: dict[int, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="s2w-backfill-bench-") as tmp:
        root = Path(tmp)
        (root / "mapping.toml").write_text(MAPPING)
        with LocalStack(root / "stack") as stack:
            row_counts = [int(r) for r in args.rows.split(",")]
            rounds = [int(r) for r in args.rounds.split(",")]
            if len(rounds) not in (1, len(row_counts)):
                parser.error("--rounds takes one number or one per --rows entry")
            for rows, count in zip(row_counts, rounds * len(row_counts) if len(rounds) == 1 else rounds):
                sizes[rows] = one_size(stack, root, rows, count, args)
    print_tables(sizes, args)


if __name__ == "__main__":
    main()
