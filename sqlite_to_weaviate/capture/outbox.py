"""The outbox: DDL, reading, pruning and explicit enqueueing of keys.

``_s2w_outbox`` rows are (seq, table, op, k1..k8, ts, ctx). ``seq`` is AUTOINCREMENT so it
never repeats, even after every row was pruned (a ``seq > cursor`` reader would otherwise skip
new rows). Key columns have no declared type, so each value keeps its exact storage class.
No column has NOT NULL / UNIQUE / CHECK: an outer ``OR IGNORE`` / ``OR REPLACE`` on the app's
statement propagates into trigger INSERTs and could otherwise drop or replace outbox rows.
A text key that is not valid UTF-8 is read as ``InvalidText`` (sqlite_text.py) and bound
back as the same TEXT, so it neither stops the relay nor the backfill's keyset scan.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlite_to_weaviate.sqlite_text import bind, fetch_all, marker

from .errors import CaptureError
from .identifiers import quote_ident
from .tables import MAX_PK_COLUMNS, table_info
from .txn import immediate

OPS = ("I", "U", "D", "R")
_KEY_COLS = ", ".join(f"k{i}" for i in range(1, MAX_PK_COLUMNS + 1))

OUTBOX_DDL = (
    "CREATE TABLE IF NOT EXISTS _s2w_outbox ("
    "seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT, op TEXT, "
    f"{_KEY_COLS}, "
    "ts REAL DEFAULT ((julianday('now') - 2440587.5) * 86400.0), ctx TEXT)"
)
CONTEXT_DDL = "CREATE TABLE IF NOT EXISTS _s2w_context (id INTEGER PRIMARY KEY CHECK (id = 1), ctx TEXT)"
CAPTURE_DDL = (
    "CREATE TABLE IF NOT EXISTS _s2w_capture (tbl TEXT PRIMARY KEY, schema_hash TEXT, "
    "trigger_version INTEGER, installed_at REAL, pk_columns TEXT, description TEXT, "
    "skip_noop_updates INTEGER, captured_by TEXT)"
)


@dataclass(frozen=True)
class OutboxRow:
    """One captured change: ``key`` holds the table's primary-key values in PK order."""

    seq: int
    table: str
    op: str
    key: tuple
    ts: float | None
    ctx: dict | None


def _pk_widths(conn: sqlite3.Connection) -> dict[str, int]:
    try:
        rows = conn.execute("SELECT tbl, pk_columns FROM _s2w_capture").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {t: len(json.loads(p)) for t, p in rows}


def read_outbox(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[OutboxRow]:
    """Up to ``limit`` rows with ``seq > after_seq`` in seq order.

    The key width comes from ``_s2w_capture``; for a table no longer recorded there (renamed
    or dropped since) trailing NULL key slots are dropped.
    """
    widths = _pk_widths(conn)
    rows = fetch_all(  # a text key that is not UTF-8 arrives as InvalidText instead of failing the read
        conn, f"SELECT seq, tbl, op, {_KEY_COLS}, ts, ctx FROM _s2w_outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )
    out = []
    for r in rows:
        keys = r[3 : 3 + MAX_PK_COLUMNS]
        n = widths.get(r[1])
        if n is None:
            n = MAX_PK_COLUMNS
            while n > 1 and keys[n - 1] is None:
                n -= 1
        ctx = r[-1]
        out.append(
            OutboxRow(
                seq=r[0], table=r[1], op=r[2], key=tuple(keys[:n]), ts=r[-2],
                ctx=json.loads(ctx) if isinstance(ctx, str) else None,
            )
        )
    return out


def outbox_depth(conn: sqlite3.Connection, after_seq: int = 0) -> int:
    """Number of outbox rows with ``seq > after_seq`` (rows not yet acknowledged)."""
    return conn.execute("SELECT count(*) FROM _s2w_outbox WHERE seq > ?", (after_seq,)).fetchone()[0]


def prune_outbox(conn: sqlite3.Connection, upto_seq: int) -> int:
    """Delete rows with ``seq <= upto_seq`` (call only with an acknowledged checkpoint)."""
    with immediate(conn, join=True):
        return conn.execute("DELETE FROM _s2w_outbox WHERE seq <= ?", (upto_seq,)).rowcount


def enqueue_keys(
    conn: sqlite3.Connection, table: str, keys: Iterable[Sequence], op: str = "R", ctx: dict | None = None
) -> int:
    """Append one outbox row per key (e.g. verifier repairs); returns how many.

    Runs in the caller's open transaction if there is one, else in its own BEGIN IMMEDIATE.
    """
    if op not in OPS:
        raise CaptureError(f"unknown outbox op {op!r}; expected one of {OPS}")
    info = table_info(conn, table)
    n = len(info.pk)
    cols = ", ".join(f"k{i}" for i in range(1, n + 1))
    marks = ", ".join("?" * n)
    ctx_json = json.dumps(ctx, sort_keys=True, default=str) if ctx else None
    params = []
    for key in keys:
        key = tuple(key)
        if len(key) != n:
            raise CaptureError(f"table {info.name!r} has a {n}-column key; got {key!r}")
        params.append((info.name, op, *key, ctx_json))
    with immediate(conn, join=True):
        conn.executemany(
            f"INSERT INTO _s2w_outbox(tbl, op, {cols}, ctx) VALUES (?, ?, {marks}, ?)", params
        )
    return len(params)


def enqueue_all_keys(
    conn: sqlite3.Connection,
    table: str,
    after_key: Sequence | None = None,
    limit: int | None = None,
    op: str = "R",
) -> tuple | None:
    """Append an ``op`` row for each key after ``after_key`` in PK order, at most ``limit``.

    One short transaction per call (keyset pagination, so backfill never holds a long read
    open and starves WAL checkpoints). Returns the last key enqueued, or None when there were
    no more keys. Runs in the caller's transaction if one is open.
    """
    info = table_info(conn, table)
    t = quote_ident(info.name)
    pk = ", ".join(quote_ident(k) for k in info.pk)
    n = len(info.pk)
    cols = ", ".join(f"k{i}" for i in range(1, n + 1))
    where, params = "", []
    if after_key is not None:
        after_key = tuple(after_key)
        if len(after_key) != n:
            raise CaptureError(f"table {info.name!r} has a {n}-column key; got after_key={after_key!r}")
        where = f"WHERE ({pk}) > ({', '.join(marker(v) for v in after_key)})"
        params = [bind(v) for v in after_key]
    order = f"ORDER BY {pk}"
    lim = ""
    if limit is not None:
        lim = " LIMIT ?"
        params.append(int(limit))
    with immediate(conn, join=True):
        conn.execute(
            f"INSERT INTO _s2w_outbox(tbl, op, {cols}) SELECT ?, ?, {pk} FROM {t} {where} {order}{lim}",
            [info.name, op, *params],
        )
        last = fetch_all(
            conn,
            f"SELECT {pk} FROM (SELECT {pk} FROM {t} {where} {order}{lim}) "
            f"ORDER BY {', '.join(quote_ident(k) + ' DESC' for k in info.pk)} LIMIT 1",
            params,
        )
    return tuple(last[0]) if last else None
