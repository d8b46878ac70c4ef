"""Shared helpers for the capture tests (real SQLite files in tmp_path; no tests here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_to_weaviate.capture import install
from sqlite_to_weaviate.store.lanes import read_outbox


def connect(path: Path | str, *, recursive_triggers: bool = False, foreign_keys: bool = False) -> sqlite3.Connection:
    """An autocommit connection in WAL mode, like a plain app writer (no SQLAlchemy)."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA recursive_triggers={'ON' if recursive_triggers else 'OFF'}")
    conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    return conn


def make_db(tmp_path: Path, ddl: str, tables: list[str] | None = None, **kw) -> sqlite3.Connection:
    conn = connect(tmp_path / "app.db", **kw)
    conn.executescript(ddl)
    install(conn, tables)
    return conn


def changes(conn: sqlite3.Connection, after: int = 0) -> list[tuple[str, str, tuple]]:
    """(table, op, key) of every outbox row after ``after``."""
    return [(r.table, r.op, r.key) for r in read_outbox(conn, after, 1_000_000)]


def resyncs(conn: sqlite3.Connection) -> list[tuple[str, str, tuple]]:
    """(table, op, key) of every bulk-lane row: drift repairs re-send whole tables there, behind live changes."""
    from sqlite_to_weaviate.store.lanes import BULK, read

    return [(r.table, r.op, r.key) for r in read(conn, BULK, 0, 1_000_000)]


def last_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM _s2w_outbox").fetchone()[0]
