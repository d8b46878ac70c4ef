"""Steady write traffic against the chat database while the sidecar migrates it.

``run_traffic`` performs one transaction every ``1 / rate`` seconds for ``duration``
seconds (or until ``stop`` is set): new conversations and messages, agent interactions,
message edits, conversation toggles, deletes of messages and whole conversations (the
database cascades to their messages), and message primary-key changes. ``mode="orm"``
writes through the SQLAlchemy models with capture context attached; ``mode="raw"``
writes with plain sqlite3, like any other process sharing the file. The returned
:class:`TrafficStats` lists every key changed, so tests can check each one was captured
and the demo can report throughput.

Run ``python -m examples.chat_app.traffic --db PATH --rate 50 --duration 30 --mode orm``.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy.exc

from .traffic_plan import Pools, plan_next
from .writer_orm import OrmWriter
from .writer_raw import RawWriter

Mode = Literal["orm", "raw"]
MAX_CATCH_UP_S = 1.0
"""After a stall longer than this, the schedule restarts instead of bursting to catch up."""
_KEPT_ERRORS = 20


@dataclass
class TrafficStats:
    """What a traffic run did: committed writes per operation, failures and changed keys."""

    mode: str
    rate: float
    elapsed_s: float = 0.0
    writes: int = 0
    misses: int = 0
    failures: int = 0
    by_op: Counter[str] = field(default_factory=Counter)
    changed_keys: set[tuple[str, tuple[Any, ...]]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        """Committed writes per second over the run."""
        return self.writes / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "rate": self.rate, "elapsed_s": round(self.elapsed_s, 3), "writes": self.writes,
            "achieved_rate": round(self.achieved_rate, 2), "misses": self.misses, "failures": self.failures,
            "by_op": dict(sorted(self.by_op.items())), "changed_keys": len(self.changed_keys),
            "errors": self.errors,
        }


def _open_writer(path: str | Path, mode: Mode) -> OrmWriter | RawWriter:
    if mode == "orm":
        return OrmWriter(path)
    if mode == "raw":
        return RawWriter(path)
    raise ValueError(f"mode must be 'orm' or 'raw', got {mode!r}")


def _load_pools(path: str | Path) -> Pools:
    conn = sqlite3.connect(path)
    try:
        return Pools.load(conn)
    finally:
        conn.close()


def run_traffic(
    path: str | Path,
    *,
    rate: float,
    duration: float,
    seed: int = 0,
    mode: Mode = "orm",
    stop: threading.Event | None = None,
) -> TrafficStats:
    """Write to the chat database at ``rate`` transactions/s for ``duration`` seconds.

    The database must already have the chat schema (``seed.build_sample_database``).
    A transaction that fails (e.g. "database is locked" beyond the busy timeout) is
    counted in ``failures`` with its error kept, and the run goes on: the traffic
    generator stands in for an app that must keep working whatever the sidecar does.
    """
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if duration < 0:
        raise ValueError(f"duration must be >= 0, got {duration}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such database; create it with `python -m examples.chat_app.seed`")
    stop = stop or threading.Event()
    rng = random.Random(seed)
    pools = _load_pools(path)
    stats = TrafficStats(mode=mode, rate=rate)
    writer = _open_writer(path, mode)
    interval = 1.0 / rate
    started = time.monotonic()
    next_at = started
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now - started >= duration:
                break
            if now < next_at:
                stop.wait(min(next_at - now, duration - (now - started)))
                continue
            if now - next_at > MAX_CATCH_UP_S:
                next_at = now
            next_at += interval
            plan = plan_next(rng, pools)
            try:
                changed = writer.apply(plan, pools)
            except (sqlite3.Error, sqlalchemy.exc.SQLAlchemyError) as exc:
                stats.failures += 1
                if len(stats.errors) < _KEPT_ERRORS:
                    stats.errors.append(f"{plan.op}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                continue
            if changed is None:
                stats.misses += 1
                continue
            stats.writes += 1
            stats.by_op[plan.op] += 1
            stats.changed_keys.update(changed)
    finally:
        stats.elapsed_s = time.monotonic() - started
        writer.close()
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.chat_app.traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, type=Path, help="Database created by examples.chat_app.seed.")
    parser.add_argument("--rate", type=float, default=50.0, help="Transactions per second.")
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds to run (SIGINT/SIGTERM stop early).")
    parser.add_argument("--mode", choices=("orm", "raw"), default="orm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stats = run_traffic(args.db, rate=args.rate, duration=args.duration, seed=args.seed, mode=args.mode, stop=stop)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(stats.to_json(), ensure_ascii=False))
    return 1 if stats.failures and not stats.writes else 0


if __name__ == "__main__":
    sys.exit(main())
