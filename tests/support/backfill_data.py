"""Shared data for the backfill integration tests: a schema using every mapped type, a config
file (big ints as text, unix dates, vector BLOB; JSON stays text because
tests.support.pipeline cannot read object properties back together with blobs), deterministic rows, hostile
live writers, and a direct vector check. tests/unit/test_backfill_data.py pins the data itself."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.backfill import BackfillOptions, ProgressEvent, backfill
from sqlite_to_weaviate.mapping import decode_vector, encode_vector

SCHEMA = """
CREATE TABLE records (
    id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, big INTEGER, price REAL, active BOOLEAN,
    created_at TIMESTAMP, seen_at INTEGER, meta JSON, attrs JSON, data BLOB, embedding BLOB, body TEXT
);
CREATE TABLE pairs (owner TEXT, n INTEGER, note TEXT, weight REAL, PRIMARY KEY (owner, n)) WITHOUT ROWID;
"""

MAPPING_TOML = """
[tables.records]
vector_column = "embedding"

[tables.records.columns.big]
type = "text"

[tables.records.columns.seen_at]
type = "date"
"""

DIM = 8
LARGE_EVERY = 5000          # every 5000th row carries a ~1 MB text body
LARGE_BYTES = 1_000_000


def record(i: int, rng: random.Random, version: int = 0) -> tuple[Any, ...]:
    large = i % LARGE_EVERY == 3 and version == 0
    body = ("lorem ipsum dolor sit amet " * (LARGE_BYTES // 27 + 1))[:LARGE_BYTES] if large else f"body {i} v{version}"
    return (
        i, f"name {i} v{version} é", rng.randrange(-2**53, 2**53), rng.choice([2**63 - 1, -(2**63), 2**60 + i, i]),
        rng.uniform(-1e9, 1e9), rng.randrange(2), f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T"
        f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z",
        rng.randrange(0, 2_000_000_000), json.dumps({"i": i, "tags": ["a", "b"], "v": version}),
        json.dumps({"lang": rng.choice(["en", "fr"]), "n": rng.randrange(1000)}),
        rng.randbytes(rng.randrange(1, 64)) if i % 7 else None,  # b"" is dead-lettered by Weaviate (reported)
        encode_vector([rng.uniform(-1, 1) for _ in range(DIM)]) if i % 11 else None,
        body if i % 13 else None,
    )


def pair(i: int, rng: random.Random) -> tuple[Any, ...]:
    return (f"owner{i % 97}", i, f"note {i} {rng.random():.6f}", rng.random())


def make_db(path: Path, rows: int, *, seed: int = 0, pairs: int | None = None) -> None:
    """A pre-populated app database (before capture is installed), committed in big chunks."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    for start in range(0, rows, 5000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         [record(i, rng) for i in range(start, min(rows, start + 5000))])
        conn.execute("COMMIT")
    n_pairs = rows // 4 if pairs is None else pairs
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO pairs VALUES (?,?,?,?)", [pair(i, rng) for i in range(n_pairs)])
    conn.execute("COMMIT")
    conn.close()


def write_mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING_TOML)
    return path


def mutate_once(conn: sqlite3.Connection, rng: random.Random, id_space: int) -> None:
    """One random committed (or rolled-back) change: update, delete, PK change, re-insert, pairs."""
    i = rng.randrange(id_space)
    op = rng.random()
    conn.execute("BEGIN IMMEDIATE")
    if op < 0.35:
        conn.execute("UPDATE records SET name = ?, qty = qty + 1, price = ?, body = ? WHERE id = ?",
                     (f"upd {rng.random():.9f}", rng.uniform(-1, 1), f"b{rng.random()}", i))
    elif op < 0.5:
        conn.execute("DELETE FROM records WHERE id = ?", (i,))
    elif op < 0.6:
        conn.execute("UPDATE OR IGNORE records SET id = ? WHERE id = ?", (rng.randrange(id_space * 11 // 10), i))
    elif op < 0.8:
        conn.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     record(i, rng, version=rng.randrange(1, 1000)))
    else:
        conn.execute("INSERT INTO pairs VALUES (?,?,?,?) ON CONFLICT(owner, n) DO UPDATE SET note = excluded.note, "
                     "weight = excluded.weight", pair(i, rng))
        if rng.random() < 0.4:
            conn.execute("DELETE FROM pairs WHERE owner = ? AND n = ?", (f"owner{(i + 1) % 97}", i + 1))
    conn.execute("ROLLBACK" if rng.random() < 0.05 else "COMMIT")


class Writers:
    """Threads that mutate the database until stopped: as fast as they can, or ``rate`` changes/s each."""

    def __init__(self, db: Path, seeds: list[int], id_space: int, rate: float | None = None) -> None:
        self.rate = rate
        self.stop = threading.Event()
        self.count = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(db, s, id_space), daemon=True) for s in seeds]

    def _run(self, db: Path, seed: int, id_space: int) -> None:
        rng = random.Random(seed)
        conn = sqlite3.connect(db, isolation_level=None, timeout=60)
        started, done = time.monotonic(), 0
        try:
            while not self.stop.is_set():
                mutate_once(conn, rng, id_space)
                done += 1
                with self._lock:
                    self.count += 1
                if self.rate:
                    ahead = started + done / self.rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.errors.append(exc)
        finally:
            conn.close()

    def __enter__(self) -> "Writers":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.join()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not self.errors, self.errors


class RereadPage:
    """Progress callback: right after a page of ``records`` keys commits, update/delete/re-key
    exactly the keys of that page (the backfill's R rows for them are already in the outbox)."""

    def __init__(self, db: Path, seed: int) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None, timeout=60, check_same_thread=False)
        self.rng = random.Random(seed)
        self.pages = 0
        self.touched = 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.table != "records" or not event.page_rows or event.page_last is None:
            return
        lo = event.page_after[0] if event.page_after else -1
        hi = event.page_last[0]
        self.pages += 1
        self.conn.execute("BEGIN IMMEDIATE")
        self.touched += self.conn.execute(
            "UPDATE records SET name = name || ' after-read', qty = coalesce(qty, 0) + 1 WHERE id > ? AND id <= ?",
            (lo, hi)).rowcount
        self.conn.execute("DELETE FROM records WHERE id = (SELECT min(id) FROM records WHERE id > ? AND id <= ?)", (lo, hi))
        self.conn.execute("UPDATE OR IGNORE records SET id = id + 1000000 WHERE id = "
                          "(SELECT max(id) FROM records WHERE id > ? AND id <= ?)", (lo, hi))
        self.conn.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                          record(hi - 1, self.rng, version=7))
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def assert_vectors_equal(client: Any, db: Path, mapping, sample: int = 200) -> int:
    """Vectors are not compared by assert_stores_equal: check a sample bit for bit."""
    table = mapping.table("records")
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, embedding FROM records ORDER BY random() LIMIT ?", (sample,)).fetchall()
    conn.close()
    collection = client.collections.use(table.collection)
    objs = collection.query.fetch_objects_by_ids([table.uuid_for_key((i,)) for i, _ in rows], limit=len(rows),
                                                 include_vector=True).objects
    got = {str(o.uuid): (o.vector or {}).get("default") for o in objs}
    checked = 0
    for i, blob in rows:
        want = decode_vector(blob)
        have = got[str(table.uuid_for_key((i,)))]
        if want is None:
            assert not have, f"record {i}: unexpected vector"
        else:
            assert have == want, f"record {i}: vector {have} != {want}"
            checked += 1
    return checked


def run_backfill(settings, *, progress=None, stop=None, **options: Any):
    options.setdefault("poll_interval", 0.05)
    return backfill(settings, BackfillOptions(**options), progress=progress, stop=stop)
