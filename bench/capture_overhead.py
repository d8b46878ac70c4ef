"""App write throughput with capture off vs on, measured side by side in one run.

Two workloads, each inserts N rows then updates each row once, WAL, synchronous=NORMAL,
BEGIN IMMEDIATE, 1 and 100 rows per transaction:

* ``item``     - minimal table (int key, 4 small columns, a secondary UNIQUE index): the
                 worst case, where the trigger's outbox insert is most of the work.
* ``messages`` - the seed preset's ``messages`` table (uuid text key, FK-indexed
                 conversation id, ~400 bytes of content), i.e. what the target app writes.

Paths: ``raw`` = stdlib sqlite3 (capture off vs triggers); ``orm`` = SQLAlchemy ORM Session
(off = same pragmas and BEGIN IMMEDIATE without capture; ``hooks`` = triggers + attach();
``hooks+ctx`` = also a context row per transaction). Each cell is the median of --runs runs on
fresh database files, modes interleaved; ratios are against capture off in the same run.

    PYTHONPATH=. python bench/capture_overhead.py [--runs 5] [--rows 2000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

from sqlalchemy import Integer, String, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sqlite_to_weaviate import capture

CONTENT = "lorem ipsum dolor sit amet " * 15


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String, unique=True)
    title: Mapped[str]
    qty: Mapped[int]
    price: Mapped[float]


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String, index=True)
    role: Mapped[str]
    content: Mapped[str | None]
    created_at: Mapped[str]
    token_count: Mapped[int | None]


def _item_row(i: int, ids: list) -> dict:
    return {"id": i, "sku": f"sku-{i}", "title": f"title {i}", "qty": i, "price": i * 1.5}


def _message_row(i: int, ids: list) -> dict:
    return {"id": ids[i], "conversation_id": ids[i // 20], "role": "user", "content": CONTENT,
            "created_at": "2026-01-01 00:00:00", "token_count": i}


WORKLOADS: dict[str, tuple[type[Base], Callable[[int, list], dict], str, str]] = {
    "item": (Item, _item_row, "qty", "UPDATE item SET qty = qty + 1 WHERE id = ?"),
    "messages": (Message, _message_row, "token_count",
                 "UPDATE messages SET token_count = token_count + 1 WHERE id = ?"),
}


def _fresh_db(workload: str, capture_on: bool) -> str:
    path = os.path.join(tempfile.mkdtemp(prefix="s2w-bench-"), "app.db")
    engine = create_engine(f"sqlite:///{path}")
    WORKLOADS[workload][0].__table__.create(engine)
    engine.dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    if capture_on:
        capture.install(conn)
    conn.close()
    return path


def raw_run(workload: str, mode: str, rows: int, per_txn: int) -> float:
    model, make_row, _, update_sql = WORKLOADS[workload]
    ids = [str(uuid.uuid4()) for _ in range(rows)]
    data = [make_row(i, ids) for i in range(rows)]
    cols = list(data[0])
    insert_sql = f"INSERT INTO {model.__tablename__} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    path = _fresh_db(workload, mode != "off")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    t0 = time.perf_counter()
    for start in range(0, rows, per_txn):
        conn.execute("BEGIN IMMEDIATE")
        for row in data[start:start + per_txn]:
            conn.execute(insert_sql, tuple(row.values()))
        conn.execute("COMMIT")
    for start in range(0, rows, per_txn):
        conn.execute("BEGIN IMMEDIATE")
        for row in data[start:start + per_txn]:
            conn.execute(update_sql, (row["id"],))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return 2 * rows / elapsed


def orm_run(workload: str, mode: str, rows: int, per_txn: int) -> float:
    model, make_row, counter, _ = WORKLOADS[workload]
    ids = [str(uuid.uuid4()) for _ in range(rows)]
    data = [make_row(i, ids) for i in range(rows)]
    path = _fresh_db(workload, mode != "off")
    engine = create_engine(f"sqlite:///{path}")
    if mode == "off":
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _rec):
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
            dbapi_conn.execute("PRAGMA busy_timeout=5000")

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        ctx = (lambda: {"actor": "bench", "origin": "orm"}) if mode == "hooks+ctx" else None
        capture.attach(engine, context=ctx)
    t0 = time.perf_counter()
    for start in range(0, rows, per_txn):
        with Session(engine) as s, s.begin():
            s.add_all(model(**row) for row in data[start:start + per_txn])
    for start in range(0, rows, per_txn):
        keys = [row["id"] for row in data[start:start + per_txn]]
        with Session(engine) as s, s.begin():
            for obj in s.scalars(select(model).where(model.id.in_(keys))):
                setattr(obj, counter, getattr(obj, counter) + 1)
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return 2 * rows / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=2000)
    args = ap.parse_args()
    print(f"SQLite {sqlite3.sqlite_version}; per run: N inserts + N updates (N={args.rows} at 100 rows/txn, "
          f"N={max(200, args.rows // 4)} at 1 row/txn); median of {args.runs} runs; writes/s")
    print(f"| {'workload':<8} | {'path':<4} | {'rows/txn':>8} | {'mode':<9} | {'writes/s':>9} | {'ratio':>5} |")
    print(f"|{'-' * 10}|{'-' * 6}|{'-' * 10}|{'-' * 11}|{'-' * 11}|{'-' * 7}|")
    cases = [("raw", raw_run, ["off", "triggers"]), ("orm", orm_run, ["off", "hooks", "hooks+ctx"])]
    for workload in WORKLOADS:
        for label, fn, modes in cases:
            for per_txn in (1, 100):
                rows = args.rows if per_txn > 1 else max(200, args.rows // 4)
                samples: dict[str, list[float]] = {m: [] for m in modes}
                for _ in range(args.runs):
                    for m in modes:  # interleaved, so load changes hit every mode alike
                        samples[m].append(fn(workload, m, rows, per_txn))
                base = statistics.median(samples["off"])
                for m in modes:
                    med = statistics.median(samples[m])
                    print(f"| {workload:<8} | {label:<4} | {per_txn:>8} | {m:<9} | {med:>9.0f} | {med / base:>5.2f} |",
                          flush=True)


if __name__ == "__main__":
    main()
