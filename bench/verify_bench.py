"""Verify throughput and memory: full reconciliation vs simply reading both sides.

For each table size: build a SQLite table, load the same objects into a real local Weaviate
(direct batch import of ``to_object`` output, i.e. what the writer does), then measure in
fresh subprocesses (so peak RSS is per phase, not the loader's):

* ``raw read``  - read every row from SQLite (``select_sql``) and every object's hash
                  from Weaviate's cursor iterator: the physical limit for any verifier;
* ``verify``    - ``sqlite_to_weaviate.verify.verify(settings)`` (counts, staging,
                  merge-join; no sample, pipeline idle).

Peak RSS is sampled with psutil every 20 ms. Goal (issue 7): verify within 2x of raw read,
RSS flat in table size.

    PYTHONPATH=. python bench/verify_bench.py                   # 100k rows
    PYTHONPATH=. python bench/verify_bench.py --rows 100000 1000000
    PYTHONPATH=. python bench/verify_bench.py --weaviate-url http://127.0.0.1:8080?grpc_port=50051
    PYTHONPATH=. python bench/verify_bench.py --reuse-db /tmp/x/bench1000000.db --weaviate-url ...  # measure again
"""

from __future__ import annotations

import argparse
import multiprocessing
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import psutil

BODY = "lorem ipsum dolor sit amet " * 8


def build_db(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT, n INTEGER, score REAL, created_at TEXT)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?)",
        ((i, f"doc {i}", BODY, i % 1000, i / 3, f"2024-01-{1 + i % 28:02d}T00:00:00Z") for i in range(rows)),
    )
    conn.execute("COMMIT")
    conn.close()


def load_weaviate(settings) -> float:
    from weaviate.classes.data import DataObject

    from sqlite_to_weaviate.mapping import ensure_collections

    conn = settings.open_db(readonly=True)
    mapping = settings.load_mapping(conn)
    table = mapping.table("docs")
    client = settings.connect_weaviate()
    started = time.perf_counter()
    try:
        if client.collections.exists(table.collection):
            client.collections.delete(table.collection)
        ensure_collections(client, mapping)
        collection = client.collections.use(table.collection)
        with collection.batch.fixed_size(batch_size=1000, concurrent_requests=4) as batch:
            for values in conn.execute(table.select_sql()):
                obj = table.to_object(dict(zip(table.source_columns, values)))
                batch.add_object(properties=obj.properties, uuid=obj.uuid)
        if collection.batch.failed_objects:
            raise SystemExit(f"load failed: {collection.batch.failed_objects[:3]}")
    finally:
        client.close()
        conn.close()
    return time.perf_counter() - started


class PeakRss:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, psutil.Process().memory_info().rss)


def phase_raw(settings, queue) -> None:
    from sqlite_to_weaviate.mapping import HASH_PROPERTY

    with PeakRss() as rss:
        started = time.perf_counter()
        conn = settings.open_db(readonly=True)
        table = settings.load_mapping(conn).table("docs")
        n_rows = sum(1 for _ in conn.execute(table.select_sql()))
        client = settings.connect_weaviate()
        n_objects = sum(1 for _ in client.collections.use(table.collection).iterator(
            return_properties=[HASH_PROPERTY], cache_size=1000))
        client.close()
        conn.close()
        seconds = time.perf_counter() - started
    queue.put({"seconds": seconds, "rss": rss.peak, "rows": n_rows, "objects": n_objects})


def phase_verify(settings, queue) -> None:
    from sqlite_to_weaviate.verify import verify

    with PeakRss() as rss:
        started = time.perf_counter()
        report = verify(settings)
        seconds = time.perf_counter() - started
    queue.put({"seconds": seconds, "rss": rss.peak, "clean": report.clean, "rows": report.checked})


def run_phase(target, settings) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(settings, queue))
    proc.start()
    while True:  # a phase that crashes must fail the bench, not hang it
        try:
            result = queue.get(timeout=1)
            break
        except Exception:  # queue.Empty
            if not proc.is_alive():
                raise SystemExit(f"{target.__name__} failed (exit code {proc.exitcode}); see its traceback above")
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--weaviate-url", help="use this Weaviate instead of starting a local one")
    parser.add_argument("--runs", type=int, default=1, help="repeat each measurement, keep the fastest")
    parser.add_argument("--reuse-db", help="measure only: a database already built and loaded by this bench "
                        "(with --weaviate-url of the server holding its objects)")
    args = parser.parse_args()

    from sqlite_to_weaviate.settings import Settings

    with tempfile.TemporaryDirectory(prefix="s2w-verify-bench-") as tmp:
        stack = None
        url = args.weaviate_url
        if url is None:
            from sqlite_to_weaviate.local.stack import LocalStack

            stack = LocalStack(Path(tmp) / "stack").start()
            url = stack.weaviate.url
        try:
            results = []
            if args.reuse_db:
                if args.weaviate_url is None:
                    raise SystemExit("--reuse-db needs --weaviate-url")
                conn = sqlite3.connect(args.reuse_db)
                rows = conn.execute("SELECT count(*) FROM docs").fetchone()[0]
                conn.close()
                settings = Settings(sqlite_path=args.reuse_db, weaviate_url=url, collection_prefix=f"VerifyBench{rows}")
                raw = min((run_phase(phase_raw, settings) for _ in range(args.runs)), key=lambda r: r["seconds"])
                ver = min((run_phase(phase_verify, settings) for _ in range(args.runs)), key=lambda r: r["seconds"])
                assert raw["rows"] == raw["objects"] == rows and ver["clean"] and ver["rows"] == rows, (raw, ver)
                results.append((rows, float("nan"), raw, ver))
            for rows in ([] if args.reuse_db else args.rows):
                db = Path(tmp) / f"bench{rows}.db"
                build_db(db, rows)
                settings = Settings(sqlite_path=db, weaviate_url=url, collection_prefix=f"VerifyBench{rows}")
                load = load_weaviate(settings)
                raw = min((run_phase(phase_raw, settings) for _ in range(args.runs)), key=lambda r: r["seconds"])
                ver = min((run_phase(phase_verify, settings) for _ in range(args.runs)), key=lambda r: r["seconds"])
                assert raw["rows"] == raw["objects"] == rows and ver["clean"] and ver["rows"] == rows, (raw, ver)
                results.append((rows, load, raw, ver))
        finally:
            if stack is not None:
                stack.stop()

    header = ("rows", "load s", "raw read s", "verify s", "verify rows/s", "verify/raw", "raw RSS MB", "verify RSS MB")
    lines = [(f"{rows:,}", f"{load:.1f}", f"{raw['seconds']:.2f}", f"{ver['seconds']:.2f}",
              f"{rows / ver['seconds']:,.0f}", f"{ver['seconds'] / raw['seconds']:.2f}x",
              f"{raw['rss'] / 2**20:.0f}", f"{ver['rss'] / 2**20:.0f}") for rows, load, raw, ver in results]
    widths = [max(len(x) for x in col) for col in zip(header, *lines)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for line in lines:
        print("  ".join(v.rjust(w) for v, w in zip(line, widths)))


if __name__ == "__main__":
    main()
