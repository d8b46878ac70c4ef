"""When the backfill may take its next page: pause flag, pause file, bulk-lane backlog, memory.

The backfill is the one optional load on a live database, so it yields first: to an
operator's pause, to live traffic (the relay's backlog beyond its checkpoint — our own
pages included, which also bounds the outbox and so the file), and to its own memory cap.
Every wait is a short poll, so a stop request is honoured within ``poll_interval``.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from . import checkpoint as ckpt


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1024 * 1024)


@dataclass
class Gate:
    """Shared by the scan threads; each passes its own connection."""

    max_backlog: int | None
    memory_limit_mb: int | None
    pause_file: Path | None
    poll_interval: float
    stop: threading.Event
    min_page: int = 10
    waited: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocker(self, conn: sqlite3.Connection) -> str | None:
        """Why we must not take a page right now, or None."""
        if self.pause_file is not None and Path(self.pause_file).exists():
            return f"pause file {self.pause_file} exists"
        if ckpt.is_paused(conn):
            return f"{ckpt.PAUSED_KEY}=1 (run `backfill --resume`)"
        if self.max_backlog:
            depth = ckpt.backlog(conn)
            if depth > self.max_backlog:
                return f"bulk backlog {depth} > {self.max_backlog}: waiting for the relay (live changes go first)"
        return None

    def wait(self, conn: sqlite3.Connection, on_wait: Callable[[str], None] | None = None) -> bool:
        """Block until a page may be taken; False if asked to stop meanwhile."""
        while not self.stop.is_set():
            reason = self.blocker(conn)
            if reason is None:
                return True
            if on_wait is not None:
                on_wait(reason)
            started = time.monotonic()
            self.stop.wait(self.poll_interval)
            kind = reason.split(" ", 1)[0]
            with self._lock:
                self.waited[kind] = self.waited.get(kind, 0.0) + time.monotonic() - started
        return False

    def page_size(self, current: int) -> int:
        """Halve the page (after a GC) while RSS is above the limit; else keep it."""
        if self.memory_limit_mb is None or rss_mb() <= self.memory_limit_mb:
            return current
        if current > self.min_page:  # a full collection is costly: only while pages can still shrink
            gc.collect()
            if rss_mb() <= self.memory_limit_mb:
                return current
        started = time.monotonic()
        self.stop.wait(self.poll_interval)
        with self._lock:
            self.waited["memory"] = self.waited.get("memory", 0.0) + time.monotonic() - started
        return max(self.min_page, current // 2)
