"""Live replay: lag from commit to applied-in-Weaviate at steady write rates, and throughput.

Starts its own local Weaviate and Redis, a relay (in this process) and W worker processes,
then for each rate writes single-row transactions at that rate for D seconds (inserts and
updates on a chat-message-like table) and reads the relay's per-change lag samples
(outbox timestamp -> worker acknowledged, i.e. the batch request to Weaviate returned).
Throughput: N changes captured while the pipeline is stopped, then drained, compared with
a plain weaviate-client batch import of the same objects into the same server in the same
run. Prints Markdown tables. Usage:

    python bench/replay_bench.py [--rates 100,500,1000] [--duration 60] [--workers 2] [--changes 20000]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlite_to_weaviate.initialize import initialize  # noqa: E402
from sqlite_to_weaviate.local.stack import LocalStack  # noqa: E402
from sqlite_to_weaviate.logs import configure_logging  # noqa: E402
from sqlite_to_weaviate.mapping.collections import collection_config
from sqlite_to_weaviate.settings import Settings  # noqa: E402
from sqlite_to_weaviate.writer.relay import Relay  # noqa: E402
from sqlite_to_weaviate.operate.worker_pool import WorkerPool  # noqa: E402

SCHEMA = """
CREATE TABLE messages (
    id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, role TEXT NOT NULL,
    content TEXT NOT NULL, created_at TEXT NOT NULL, tokens INTEGER, score REAL
);
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write_at_rate(db: Path, rate: float, duration: float, start_id: int) -> int:
    """Single-row transactions at ``rate`` per second (2/3 inserts, 1/3 updates)."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    written = 0
    begin = time.perf_counter()
    next_id = start_id
    while True:
        elapsed = time.perf_counter() - begin
        if elapsed >= duration:
            break
        target = int(elapsed * rate)
        while written < target:
            conn.execute("BEGIN IMMEDIATE")
            if written % 3 == 2 and next_id > start_id:
                conn.execute("UPDATE messages SET content = content || ' (edited)', tokens = tokens + 1 WHERE id = ?",
                             (next_id - 1,))
            else:
                conn.execute(
                    "INSERT INTO messages VALUES (?, ?, 'user', ?, '2025-01-01T00:00:00Z', 12, 0.5)",
                    (next_id, next_id % 97, f"message {next_id} about replication lag and vector search"),
                )
                next_id += 1
            conn.execute("COMMIT")
            written += 1
        time.sleep(0.001)
    conn.close()
    return written


def lag_run(settings: Settings, rate: float, duration: float, start_id: int) -> dict[str, float]:
    relay = Relay(settings)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        written = write_at_rate(settings.sqlite_path, rate, duration, start_id)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not relay.idle:
            time.sleep(0.05)
        samples = list(relay.lag_samples)
    finally:
        relay.stop()
        thread.join(30)
        relay.close()
    return {"rate": rate, "written": written, "achieved": written / duration, "changes": len(samples),
            "p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99), "max": max(samples or [0])}


def plain_import_seconds(settings: Settings, rows: list[dict], mapping) -> float:
    client = settings.connect_weaviate()
    try:
        table = mapping.table("messages")
        name = table.collection + "Plain"
        config = collection_config(table.with_collection(name))
        if client.collections.exists(name):
            client.collections.delete(name)
        client.collections.create(**config)
        objects = [table.to_object(r) for r in rows]
        collection = client.collections.use(name)
        begin = time.perf_counter()
        with collection.batch.fixed_size(batch_size=settings.batch_size) as batch:
            for obj in objects:
                batch.add_object(properties=obj.properties, uuid=obj.uuid, vector=obj.vector)
        seconds = time.perf_counter() - begin
        assert not collection.batch.failed_objects
        client.collections.delete(name)
        return seconds
    finally:
        client.close()


def throughput_run(settings: Settings, changes: int, start_id: int) -> dict[str, float]:
    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO messages VALUES (?, ?, 'assistant', ?, '2025-01-02T00:00:00Z', 40, 0.25)",
        [(i, i % 97, f"bulk message {i} " + "lorem ipsum " * 20) for i in range(start_id, start_id + changes)],
    )
    conn.execute("COMMIT")
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM messages WHERE id >= ?", (start_id,))]
    conn.close()
    relay = Relay(settings)
    try:
        begin = time.perf_counter()
        assert relay.drain(600), "replay did not drain"
        ours = time.perf_counter() - begin
        mapping = relay.mapping
    finally:
        relay.close()
    plain = plain_import_seconds(settings, rows, mapping)
    return {"changes": changes, "ours_s": ours, "plain_s": plain, "ours_rps": changes / ours,
            "plain_rps": changes / plain, "ratio": plain / ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--changes", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    configure_logging("WARNING")
    root = Path(tempfile.mkdtemp(prefix="s2w-replay-bench-"))
    with LocalStack(root / "stack") as stack:
        db = root / "app.db"
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        conn.close()
        settings = Settings(sqlite_path=db, weaviate_url=stack.weaviate.url, redis_url=stack.redis.url,
                            namespace="bench", partitions=16, batch_size=args.batch_size, poll_interval=0.2)
        initialize(settings)
        workers = WorkerPool(settings, args.workers, log_dir=root / "logs").start()
        try:
            lag_rows = []
            next_id = 1
            for rate in [float(r) for r in args.rates.split(",")]:
                lag_rows.append(lag_run(settings, rate, args.duration, next_id))
                next_id += int(rate * args.duration) + 10
            tp = throughput_run(settings, args.changes, 10_000_000)
        finally:
            workers.stop()
    print(f"\nReplay lag, commit -> applied in Weaviate ({args.workers} workers, {args.duration:.0f}s per rate, "
          f"single-row transactions)\n")
    print("| target writes/s | achieved writes/s | changes applied | lag p50 | lag p99 | lag max |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in lag_rows:
        print(f"| {r['rate']:.0f} | {r['achieved']:.0f} | {r['changes']} | {r['p50'] * 1000:.0f} ms | "
              f"{r['p99'] * 1000:.0f} ms | {r['max'] * 1000:.0f} ms |")
    print(f"\nReplay throughput, {tp['changes']} captured changes drained vs plain weaviate-client batch import "
          f"of the same objects (same server, same run)\n")
    print("| pipeline | seconds | objects/s | ratio to plain |")
    print("|---|---:|---:|---:|")
    print(f"| plain `collection.batch.fixed_size` | {tp['plain_s']:.2f} | {tp['plain_rps']:.0f} | 1.00x |")
    print(f"| sqlite-to-weaviate relay + {args.workers} workers | {tp['ours_s']:.2f} | {tp['ours_rps']:.0f} | "
          f"{tp['ratio']:.2f}x |")


if __name__ == "__main__":
    main()
