"""Each embedding computed once: model calls vs distinct (model, input) pairs, through the real pipeline.

Starts its own local Weaviate and Redis, a relay (in this process) and W worker processes
embedding with the real local model (all-MiniLM-L6-v2, numpy, one BLAS thread per worker),
on a chat-message table of N rows where some texts repeat ("ok thanks", ...). Then:

1. **backfill** of the history: inputs embedded must equal the distinct texts;
2. **replay of C changes that touch only columns that are not embedded** (likes, a
   timestamp), one change per transaction while the relay runs: 0 inputs embedded;
3. **backfill re-run** (``--restart``): 0 inputs embedded;
4. **changed inputs**: E rows edited: exactly E inputs embedded;
5. **deleted and re-created rows** with their old text: found in the cache, 0 inputs.

The counts are the pipeline's own counters (``embed.counters``, published by the workers),
plus a direct model throughput measurement (one process, one thread). Prints Markdown.

    python bench/embeddings_bench.py [--rows 3000] [--changes 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlite_to_weaviate.backfill import BackfillOptions, backfill  # noqa: E402
from sqlite_to_weaviate.embed.counters import read_counters  # noqa: E402
from sqlite_to_weaviate.initialize import initialize  # noqa: E402
from sqlite_to_weaviate.local.stack import LocalStack  # noqa: E402
from sqlite_to_weaviate.logs import configure_logging  # noqa: E402
from sqlite_to_weaviate.operate.worker_pool import WorkerPool  # noqa: E402
from sqlite_to_weaviate.settings import Settings  # noqa: E402
from sqlite_to_weaviate.writer.relay import Relay  # noqa: E402

SCHEMA = """
CREATE TABLE messages (
    id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, body TEXT, likes INTEGER NOT NULL DEFAULT 0,
    seen_at TEXT
);
"""
MAPPING = """
[embedders.minilm]
kind = "local"
model = "all-MiniLM-L6-v2"

[tables.messages.columns.body]
vectorize = true

[tables.messages.vectors.body]
embedder = "minilm"
"""
REPLIES = ("ok thanks", "sounds good", "thank you!", "see you tomorrow", "great, thanks a lot", "no worries",
           "can you send the file?", "I'll check and get back to you")
SUBJECTS = ("the invoice", "my order", "the deployment", "our meeting", "the refund", "the new password",
            "the train tickets", "the quarterly report", "the database migration", "the hotel booking",
            "the broken link", "the test results", "the vector index", "the mobile app", "the flight")
VERBS = ("is delayed until", "was moved to", "needs a review before", "failed again on", "looks fine since",
         "will be ready by", "got cancelled on", "is blocked until")
WHEN = ("Monday", "Tuesday", "next week", "the end of the month", "Friday afternoon", "tomorrow morning",
        "the 3rd of June", "noon")


def message_text(rng: random.Random, i: int) -> str:
    if rng.random() < 0.2:
        return rng.choice(REPLIES)  # the same short replies, over and over
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(WHEN)} (ticket {i % 2000})"


def counters(settings: Settings) -> dict[str, int]:
    client = settings.connect_redis()
    try:
        values = read_counters(client, settings.namespace)
    finally:
        client.close()
    return next(iter(values.values()), {})


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def wait_idle(relay: Relay, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while not relay.idle:
        assert time.monotonic() < deadline, f"pipeline did not drain: {relay.snapshot()}"
        time.sleep(0.2)


def model_throughput(texts: list[str]) -> dict[str, float]:
    """One process, one BLAS thread (as a worker): embeddings per second of chat-length texts."""
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from sqlite_to_weaviate.embed.config import EmbedderSpec
    from sqlite_to_weaviate.embed.embedders import build_embedder

    started = time.perf_counter()
    embedder = build_embedder(EmbedderSpec(name="m", kind="local", model="all-MiniLM-L6-v2", batch_size=32))
    load = time.perf_counter() - started
    embedder.embed(texts[:16])
    cpu, wall = time.process_time(), time.perf_counter()
    out = embedder.embed(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"texts": len(texts), "load_s": load, "per_wall_s": len(texts) / wall, "per_cpu_s": len(texts) / cpu,
            "tokens_per_text": out.tokens / len(texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--changes", type=int, default=10000)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--recreate", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    configure_logging("WARNING")
    rng = random.Random(7)
    texts = [message_text(rng, i) for i in range(args.rows)]
    distinct = len(set(texts))
    root = Path(tempfile.mkdtemp(prefix="s2w-embeddings-bench-"))
    results: dict[str, object] = {"rows": args.rows, "distinct_texts": distinct, "workers": args.workers}
    results["model"] = model_throughput(sorted(set(texts))[:256])
    with LocalStack(root / "stack") as stack:
        db = root / "app.db"
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO messages(id, conversation_id, body) VALUES (?, ?, ?)",
                         [(i, i % 300, t) for i, t in enumerate(texts)])
        conn.execute("COMMIT")
        mapping_file = root / "mapping.toml"
        mapping_file.write_text(MAPPING)
        settings = Settings(sqlite_path=db, weaviate_url=stack.weaviate.url, redis_url=stack.redis.url,
                            namespace="bench", mapping_file=mapping_file, poll_interval=0.2, batch_size=200,
                            lease_seconds=30.0)
        initialize(settings)
        pool = WorkerPool(settings, args.workers, log_dir=root / "logs").start()
        relay = Relay(settings)
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        try:
            rows = []

            def phase(name: str, action) -> None:
                before = counters(settings)
                started = time.perf_counter()
                action()
                wait_idle(relay)
                seconds = time.perf_counter() - started
                d = delta(counters(settings), before)
                rows.append({"phase": name, "seconds": seconds, **d})
                print(f"{name}: {json.dumps(d)} in {seconds:.1f}s", file=sys.stderr, flush=True)

            phase("backfill", lambda: backfill(settings, BackfillOptions(wait_applied=True)))

            def replay() -> None:
                w = sqlite3.connect(db, isolation_level=None, timeout=30)
                for n in range(args.changes):  # one change per transaction, relay running
                    w.execute("UPDATE messages SET likes = likes + 1, seen_at = ? WHERE id = ?",
                              (f"2025-01-01T00:00:{n % 60:02d}Z", rng.randrange(args.rows)))
                w.close()

            phase(f"replay of {args.changes:,} changes to columns that are not embedded", replay)
            phase("backfill re-run", lambda: backfill(settings, BackfillOptions(restart=True, wait_applied=True)))

            edited = rng.sample(range(args.rows), args.edits)

            def edit() -> None:
                conn.executemany("UPDATE messages SET body = body || ' (edited ' || id || ')' WHERE id = ?",
                                 [(i,) for i in edited])

            phase(f"{args.edits} inputs changed", edit)
            gone = [i for i in rng.sample(range(args.rows), args.recreate) if i not in set(edited)]

            def recreate() -> None:
                conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in gone])
                wait_idle(relay)
                conn.executemany("INSERT INTO messages(id, conversation_id, body) VALUES (?, 0, ?)",
                                 [(i, texts[i]) for i in gone])

            phase(f"{len(gone)} rows deleted and re-created with the same text", recreate)
        finally:
            relay.stop()
            thread.join(30)
            relay.close()
            pool.stop()
        results["phases"] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print_tables(results)


def print_tables(results: dict) -> None:
    model = results["model"]
    print(f"\nModel: all-MiniLM-L6-v2 (numpy), one process, one BLAS thread: {model['per_wall_s']:.0f} embeddings/s "
          f"wall, {model['per_cpu_s']:.0f} per CPU-second ({model['texts']} chat texts of "
          f"{model['tokens_per_text']:.0f} tokens on average; loaded in {model['load_s']:.2f}s).\n")
    print(f"{results['rows']:,} rows, {results['distinct_texts']:,} distinct texts, {results['workers']} workers:\n")
    print("| phase | inputs embedded (model) | model calls | reused from the object | from the cache "
          "| seconds | embeddings/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p in results["phases"]:
        rate = p["embedded"] / p["seconds"] if p["embedded"] else 0
        print(f"| {p['phase']} | {p['embedded']:,} | {p['requests']:,} | {p['reused_object']:,} | "
              f"{p['reused_cache']:,} | {p['seconds']:.1f} | {rate:.0f} |")
    first = results["phases"][0]
    print(f"\nbackfill: {first['embedded']:,} inputs embedded for {results['distinct_texts']:,} distinct texts "
          f"({'equal' if first['embedded'] == results['distinct_texts'] else 'DIFFERENT'}).")


if __name__ == "__main__":
    main()
