"""Scale-out: replay and backfill throughput on 1 Weaviate node vs a 3-node cluster.

Starts one Redis, one single-node Weaviate and one 3-node Weaviate cluster (all local,
the pinned binary), then measures, for each setup, in the same run:

* **backfill**: N pre-existing rows streamed through the outbox, timed from the start of
  the backfill until everything is applied (relay in this process, W worker processes);
* **replay**: M captured changes (updates committed while the relay is stopped), timed
  from the relay's start until the outbox is drained.

Setups: ``1 node`` (replication factor 1), ``3 nodes RF=1`` (every collection sharded over
the 3 nodes, one copy), ``3 nodes RF=3`` (every object on every node, QUORUM writes), and
``1 node, 1 worker`` (what one worker process moves, for the capacity model). On a
cluster the workers are spread over the nodes (worker i talks to node i mod 3), as
workers on several hosts would be.

The machine is shared and noisy, so the setups are interleaved (A B C D A B C D ...) and
each figure is the median of the repeats; ratios are taken against ``1 node`` medians of
the same run. Prints Markdown tables (and ``--json FILE`` for machines). Usage:

    python bench/scale_out_bench.py [--rows 20000] [--changes 10000] [--repeats 3] [--workers 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backfill_bench import MAPPING, build_db  # noqa: E402  (the same rows as the backfill bench)

from sqlite_to_weaviate.backfill import BackfillOptions, backfill  # noqa: E402
from sqlite_to_weaviate.initialize import initialize  # noqa: E402
from sqlite_to_weaviate.local import process  # noqa: E402
from sqlite_to_weaviate.local.redis_server import RedisServer  # noqa: E402
from sqlite_to_weaviate.local.weaviate_cluster import WeaviateCluster  # noqa: E402
from sqlite_to_weaviate.local.weaviate_server import WeaviateServer  # noqa: E402
from sqlite_to_weaviate.logs import configure_logging  # noqa: E402
from sqlite_to_weaviate.operate.worker_pool import worker_cli_env  # noqa: E402
from sqlite_to_weaviate.settings import Settings  # noqa: E402
from sqlite_to_weaviate.writer.relay import Relay  # noqa: E402

def build_template(path: Path, rows: int) -> None:
    """The backfill bench's docs rows, with 60 words of text each."""
    build_db(path, rows, words=60)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


class Setup:
    def __init__(self, name: str, urls: list[str], replication_factor: int, workers: int) -> None:
        self.name, self.urls, self.replication_factor, self.workers = name, urls, replication_factor, workers


def start_workers(settings: Settings, setup: Setup, log_dir: Path) -> list[subprocess.Popen]:
    procs = []
    for i in range(setup.workers):
        env = worker_cli_env(settings.replace(weaviate_url=setup.urls[i % len(setup.urls)]), "WARNING")
        with open(log_dir / f"worker{i}.log", "ab") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "sqlite_to_weaviate", "worker"], env=env,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        process.stop(proc, timeout=30)  # SIGTERM to the group, then SIGKILL


def one_run(setup: Setup, template: Path, root: Path, redis_url: str, run_no: int, args: argparse.Namespace) -> dict:
    work = root / f"run{run_no}"
    work.mkdir()
    db = work / "app.db"
    shutil.copy(template, db)
    (work / "mapping.toml").write_text(MAPPING)
    settings = Settings(sqlite_path=db, weaviate_url=setup.urls[0], redis_url=redis_url, namespace=f"sob{run_no}",
                        collection_prefix=f"Sob{run_no}", mapping_file=work / "mapping.toml", partitions=16,
                        batch_size=200, poll_interval=0.2, replication_factor=setup.replication_factor)
    initialize(settings)
    workers = start_workers(settings, setup, work)
    try:
        time.sleep(2.0)  # worker start-up is not the pipeline's cost
        relay = Relay(settings)
        thread = threading.Thread(target=relay.run, kwargs={"watch": True}, daemon=True)
        thread.start()
        begin = time.perf_counter()
        report = backfill(settings, BackfillOptions(wait_applied=True, wait_timeout=1800, page_size=2000,
                                                    poll_interval=0.05))
        backfill_s = time.perf_counter() - begin
        assert report.done and report.applied, f"{setup.name}: backfill did not finish"
        relay.stop()
        thread.join(60)
        relay.close()
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE docs SET views = views + 1, score = score / 2 WHERE id < ?", (args.changes,))
        conn.execute("COMMIT")
        conn.close()
        relay = Relay(settings)
        try:
            begin = time.perf_counter()
            assert relay.drain(1800), f"{setup.name}: replay did not drain"
            replay_s = time.perf_counter() - begin
        finally:
            relay.close()
    finally:
        stop_workers(workers)
        client = settings.connect_weaviate()
        try:
            client.collections.delete(f"Sob{run_no}Docs")
        finally:
            client.close()
        shutil.rmtree(work, ignore_errors=True)
    return {"setup": setup.name, "backfill_rows_per_s": args.rows / backfill_s,
            "replay_changes_per_s": args.changes / replay_s, "backfill_s": backfill_s, "replay_s": replay_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000, help="rows backfilled per run")
    parser.add_argument("--changes", type=int, default=10_000, help="captured changes replayed per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the raw runs and medians here")
    args = parser.parse_args()
    if args.changes > args.rows:
        parser.error("--changes must not exceed --rows (the replay updates existing rows)")
    configure_logging("WARNING")
    root = Path(tempfile.mkdtemp(prefix="s2w-scale-out-bench-"))
    template = root / "template.db"
    build_template(template, args.rows)
    redis = RedisServer(root / "redis").start()
    single = WeaviateServer(root / "single")
    cluster = WeaviateCluster(root / "cluster", size=3)
    runs: list[dict[str, Any]] = []
    try:
        single.start()
        cluster.start()
        setups = [Setup("1 node", [single.url], 1, args.workers),
                  Setup("3 nodes RF=1", cluster.urls, 1, args.workers),
                  Setup("3 nodes RF=3", cluster.urls, 3, args.workers),
                  Setup("1 node, 1 worker", [single.url], 1, 1)]
        run_no = 0
        for repeat in range(args.repeats):
            for setup in setups:
                run_no += 1
                result = one_run(setup, template, root, redis.url, run_no, args)
                result["repeat"] = repeat
                runs.append(result)
                print(f"# repeat {repeat + 1} {setup.name}: backfill {result['backfill_rows_per_s']:.0f} rows/s, "
                      f"replay {result['replay_changes_per_s']:.0f} changes/s", file=sys.stderr, flush=True)
    finally:
        cluster.stop()
        single.stop()
        redis.stop()
    medians = {}
    for setup in setups:
        mine = [r for r in runs if r["setup"] == setup.name]
        medians[setup.name] = {key: statistics.median(r[key] for r in mine)
                               for key in ("backfill_rows_per_s", "replay_changes_per_s")}
    base = medians["1 node"]
    load = os.getloadavg()
    print(f"\nScale-out throughput: {args.rows} rows backfilled, {args.changes} changes replayed per run; "
          f"{args.workers} workers (spread over the nodes); medians of {args.repeats} interleaved repeats; "
          f"load average at the end {load[0]:.1f}\n")
    print("| setup | backfill rows/s | vs 1 node | replay changes/s | vs 1 node |")
    print("|---|---:|---:|---:|---:|")
    for setup in setups:
        m = medians[setup.name]
        print(f"| {setup.name} | {m['backfill_rows_per_s']:.0f} | "
              f"{m['backfill_rows_per_s'] / base['backfill_rows_per_s']:.2f}x | {m['replay_changes_per_s']:.0f} | "
              f"{m['replay_changes_per_s'] / base['replay_changes_per_s']:.2f}x |")
    print("\nEvery run (rows/s, changes/s):\n")
    for setup in setups:
        mine = [r for r in runs if r["setup"] == setup.name]
        print(f"- {setup.name}: backfill " + ", ".join(f"{r['backfill_rows_per_s']:.0f}" for r in mine)
              + "; replay " + ", ".join(f"{r['replay_changes_per_s']:.0f}" for r in mine))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "runs": runs,
                                         "medians": medians, "loadavg": load}, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
