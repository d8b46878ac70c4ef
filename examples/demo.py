"""The README's first command: a visible, end-to-end live migration on this machine.

1. starts a real local Weaviate and Redis on 127.0.0.1 (state under ``.s2w/demo``),
2. builds the sample chat database (examples/chat_app) and maps it with the seed preset,
3. installs capture, creates the collections, starts the relay and 4 workers,
4. keeps the example app writing through the ORM while the backfill streams the history,
5. drains, verifies both stores (and search: ``verify --search``), and ends with a report,
   semantic searches over the migrated messages (the workers embedded them with the local
   all-MiniLM-L6-v2 model, each text once) and a keyword search.

Run it with ``./scripts/demo`` (which installs everything first) or
``python -m examples.demo [--conversations N] [--rate W] [--keep]``.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import threading
import time
from pathlib import Path

from examples.chat_app.content import SEMANTIC_QUERIES, SUPPORT_FAQ
from examples.chat_app.seed import build_sample_database
from examples.chat_app.semantic import search_messages, write_semantic_mapping
from examples.chat_app.traffic import run_traffic
from sqlite_to_weaviate.backfill import BackfillOptions, backfill
from sqlite_to_weaviate.initialize import initialize
from sqlite_to_weaviate.local.stack import LocalStack
from sqlite_to_weaviate.logs import configure_logging
from sqlite_to_weaviate.embed.counters import read_counters, summary_lines
from sqlite_to_weaviate.embed.query import load_embedder
from sqlite_to_weaviate.operate.worker_pool import WorkerPool
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.verify import verify
from sqlite_to_weaviate.verify.search import SearchOptions
from sqlite_to_weaviate.writer.relay import Relay

ROOT = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"\033[1m==>\033[0m {message}" if sys.stdout.isatty() else f"==> {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def migrate_live(args: argparse.Namespace, settings: Settings, db: Path, relay: Relay):
    """Phases 2-4 while the example app writes; returns the verify report."""
    say(f"phase 3: dual-write live: relay + {args.workers} workers running")

    stop_traffic = threading.Event()
    traffic_result: dict = {}
    traffic = threading.Thread(
        target=lambda: traffic_result.update(stats=run_traffic(db, rate=args.rate, duration=3600, seed=11,
                                                               mode="orm", stop=stop_traffic)),
        name="app-traffic", daemon=True,
    )
    traffic.start()
    say(f"the example app keeps writing through SQLAlchemy at {args.rate:.0f} writes/s")

    say("phase 2: backfill of the historical rows, while the app writes")
    started = time.perf_counter()
    result = backfill(settings, BackfillOptions(wait_applied=True, page_size=500))
    backfill_s = time.perf_counter() - started
    time.sleep(2)
    stop_traffic.set()
    traffic.join(30)
    deadline = time.monotonic() + 120
    while not relay.idle and time.monotonic() < deadline:
        time.sleep(0.1)
    lag = list(relay.lag_samples)
    stats = traffic_result.get("stats")
    say(f"backfill: {result.rows_enqueued} rows in {backfill_s:.1f}s "
        f"({result.rows_enqueued / max(backfill_s, 1e-9):.0f} rows/s); "
        f"app writes during the migration: {getattr(stats, 'writes', '?')}")

    say("phase 4: verify — every row against every object, by content hash, a field-level sample, and search "
        "(each sampled row found by its words and by its own vector)")
    verdict = verify(settings, sample=200, search=SearchOptions(sample=100))
    print(verdict.render())

    client = settings.connect_weaviate()
    try:
        print("\nrows per collection")
        for table in relay.mapping.tables.values():
            total = client.collections.use(table.collection).aggregate.over_all(total_count=True).total_count
            rows = sqlite3.connect(db).execute(f'SELECT count(*) FROM "{table.table}"').fetchone()[0]
            print(f"  {table.collection:<18} sqlite {rows:>6}   weaviate {total:>6}")
        if lag:
            print(f"\nreplay lag (commit -> applied): p50 {percentile(lag, .5) * 1000:.0f} ms, "
                  f"p99 {percentile(lag, .99) * 1000:.0f} ms, mean {statistics.fmean(lag) * 1000:.0f} ms "
                  f"over {len(lag)} changes")
        redis_client = settings.connect_redis()
        try:
            print("\nembeddings (each distinct text sent to the model once):")
            for line in summary_lines(read_counters(redis_client, settings.namespace)):
                print("  " + line)
        finally:
            redis_client.close()
        messages = relay.mapping.table("messages").collection
        embedder = load_embedder(settings.mapping_file, "minilm")
        print(f"\nsemantic search over {messages} (all-MiniLM-L6-v2; no query shares a word with its answer):")
        for query, answer in SEMANTIC_QUERIES.items():
            ranked = search_messages(client, embedder, messages, query, limit=3)
            print(f"  {query!r}")
            for rank, (text, distance) in enumerate(ranked, 1):
                mark = "  <- the answer" if text == SUPPORT_FAQ[answer] else ""
                print(f"    {rank}. [{1 - distance:.2f}] {text[:90]}{mark}")
        for query in ("looking at the night sky through a lens", "what should I cook for dinner tonight"):
            ranked = search_messages(client, embedder, messages, query, limit=2)
            print(f"  {query!r}")
            for rank, (text, distance) in enumerate(ranked, 1):
                print(f"    {rank}. [{1 - distance:.2f}] {text[:90]}")
        hits = client.collections.use(messages).query.bm25(query="database migration", limit=3)
        print(f"\nkeyword (BM25) search over {messages} for 'database migration':")
        for obj in hits.objects:
            print("  -", str(obj.properties.get("content", ""))[:100])
    finally:
        client.close()
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200, help="size of the sample database")
    parser.add_argument("--rate", type=float, default=40.0, help="app writes/s during the migration")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=ROOT / ".s2w" / "demo")
    parser.add_argument("--keep", action="store_true", help="leave the servers running at the end (Ctrl-C stops)")
    args = parser.parse_args(argv)
    configure_logging("WARNING")

    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    say("starting a local Weaviate and Redis (real servers, 127.0.0.1)")
    with LocalStack(args.dir / "stack") as stack:
        say(f"Weaviate {stack.weaviate.url}  Redis {stack.redis.url}")
        db = args.dir / "chat.db"
        counts = build_sample_database(db, conversations=args.conversations, seed=7, support_faq=True)
        say(f"sample chat database {db}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
        mapping_file = write_semantic_mapping(args.dir / "mapping.toml")  # seed preset + MiniLM on messages
        settings = Settings(sqlite_path=db, weaviate_url=stack.weaviate.url, redis_url=stack.redis.url,
                            namespace="demo", mapping_file=mapping_file, poll_interval=0.2)

        report = initialize(settings)
        say(f"phase 1: capture installed on {len(report.captured)} tables; "
            + "; ".join(report.collection_actions[:6]))
        pool = WorkerPool(settings, args.workers, log_dir=args.dir / "logs").start()
        relay = Relay(settings)
        relay_thread = threading.Thread(target=relay.run, name="relay", daemon=True)
        relay_thread.start()
        try:
            verdict = migrate_live(args, settings, db, relay)
            if args.keep:
                say("servers keep running; Ctrl-C to stop")
                try:
                    while True:
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
        finally:
            relay.stop()
            relay_thread.join(30)
            relay.close()
            pool.stop()
    clean = verdict.clean
    say("migration verified: Weaviate matches SQLite" if clean else "verification found differences (see above)")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
