"""The two outbox lanes: what the app committed (live) and what the tool replays (bulk).

* ``_s2w_outbox`` (LIVE): written by the capture triggers inside the app's transactions.
* ``_s2w_bulk`` (BULK): written by the tool itself — backfill pages, verify repairs,
  dead-letter retries, resyncs after schema drift or a trigger re-install.

Both have the same shape, ``(seq, tbl, op, k1..k8, ts, ctx)``, and each has its own
checkpoint (``relay.checkpoint``, ``relay.bulk_checkpoint`` in ``_s2w_state``). Keeping
history out of the live outbox is what lets the relay read the live lane first and
dispatch it ahead of history (``writer.scheduler``, invariant 11): a live change never
queues behind 20,000 backfill keys.

``seq`` is AUTOINCREMENT so it never repeats, even after every row was pruned (a
``seq > cursor`` reader would otherwise skip new rows). Key columns have no declared type,
so each value keeps its exact storage class. No column has NOT NULL / UNIQUE / CHECK: an
outer ``OR IGNORE`` / ``OR REPLACE`` on the app's statement propagates into trigger INSERTs
and could otherwise drop or replace outbox rows. A text key that is not valid UTF-8 is
read as ``InvalidText`` (``sqlite_text``) and bound back as the same TEXT.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.sqlite_text import bind, fetch_all, marker

from . import registry
from .txn import immediate

LIVE = "live"
BULK = "bulk"
LANES = (LIVE, BULK)
TABLES = {LIVE: "_s2w_outbox", BULK: "_s2w_bulk"}
MAX_KEY = 8
OPS = ("I", "U", "D", "R")
_KEY_COLS = ", ".join(f"k{i}" for i in range(1, MAX_KEY + 1))


def _ddl(name: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {name} ("
        "seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT, op TEXT, "
        f"{_KEY_COLS}, "
        "ts REAL DEFAULT ((julianday('now') - 2440587.5) * 86400.0), ctx TEXT)"
    )


OUTBOX_DDL = _ddl(TABLES[LIVE])
BULK_DDL = _ddl(TABLES[BULK])


class LaneError(S2WError):
    """A key of the wrong width, or an unknown op: a caller's bug, named."""


@dataclass(frozen=True)
class OutboxRow:
    """One change of a lane: ``key`` holds the table's primary-key values in PK order."""

    seq: int
    table: str
    op: str
    key: tuple
    ts: float | None
    ctx: dict | None


def ensure_bulk(conn: sqlite3.Connection) -> None:
    """Create (and record) the bulk lane in the caller's transaction."""
    registry.create_table(conn, TABLES[BULK], BULK_DDL)


def has_lane(conn: sqlite3.Connection, lane: str) -> bool:
    return registry.has_table(conn, TABLES[lane])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pk_widths(conn: sqlite3.Connection) -> dict[str, int]:
    try:
        rows = conn.execute("SELECT tbl, pk_columns FROM _s2w_capture").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {t: len(json.loads(p)) for t, p in rows}


def read(conn: sqlite3.Connection, lane: str, after_seq: int, limit: int) -> list[OutboxRow]:
    """Up to ``limit`` rows of ``lane`` with ``seq > after_seq``, in seq order.

    The key width comes from ``_s2w_capture``; for a table no longer recorded there (renamed
    or dropped since) trailing NULL key slots are dropped. A lane that does not exist yet
    (an install from before the bulk lane) reads as empty.
    """
    if lane == BULK and not has_lane(conn, BULK):
        return []
    widths = _pk_widths(conn)
    rows = fetch_all(  # a text key that is not UTF-8 arrives as InvalidText instead of failing the read
        conn, f"SELECT seq, tbl, op, {_KEY_COLS}, ts, ctx FROM {TABLES[lane]} WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )
    out = []
    for r in rows:
        keys = r[3: 3 + MAX_KEY]
        n = widths.get(r[1])
        if n is None:
            n = MAX_KEY
            while n > 1 and keys[n - 1] is None:
                n -= 1
        ctx = r[-1]
        out.append(OutboxRow(seq=r[0], table=r[1], op=r[2], key=tuple(keys[:n]), ts=r[-2],
                             ctx=json.loads(ctx) if isinstance(ctx, str) else None))
    return out


def prune(conn: sqlite3.Connection, lane: str, upto_seq: int, *, older_than: float | None = None) -> int:
    """Delete ``lane`` rows with ``seq <= upto_seq`` (an acknowledged checkpoint), optionally
    only those captured before ``older_than`` (retention); in the caller's transaction."""
    if lane == BULK and not has_lane(conn, BULK):
        return 0
    before = conn.total_changes
    if older_than is not None:
        conn.execute(f"DELETE FROM {TABLES[lane]} WHERE seq <= ? AND ts < ?", (upto_seq, older_than))
    else:
        conn.execute(f"DELETE FROM {TABLES[lane]} WHERE seq <= ?", (upto_seq,))
    return conn.total_changes - before


def enqueue_keys(conn: sqlite3.Connection, table: str, keys: Iterable[Sequence], *, width: int | None = None,
                 op: str = "R", ctx: dict | None = None) -> int:
    """Append one bulk-lane row per key (repairs, dead-letter retries); returns how many.

    ``width`` (the table's key width) rejects a key of another length. Runs in the caller's
    open transaction if there is one, else in its own ``BEGIN IMMEDIATE``.
    """
    if op not in OPS:
        raise LaneError(f"unknown outbox op {op!r}; expected one of {OPS}")
    ctx_json = json.dumps(ctx, sort_keys=True, default=str) if ctx else None
    rows = []
    for key in keys:
        key = tuple(key)
        if (width is not None and len(key) != width) or not 1 <= len(key) <= MAX_KEY:
            raise LaneError(f"table {table!r} has a {width}-column key; got {key!r}")
        rows.append(key)
    if not rows:
        return 0
    with immediate(conn, join=True):
        ensure_bulk(conn)
        for key in rows:  # an InvalidText key value binds back as the same TEXT (CAST(? AS TEXT))
            marks = ", ".join([marker(v) for v in key] + ["?"] * (MAX_KEY - len(key)))
            conn.execute(f"INSERT INTO {TABLES[BULK]}(tbl, op, {_KEY_COLS}, ctx) VALUES (?, ?, {marks}, ?)",
                         (table, op, *[bind(v) for v in key], *([None] * (MAX_KEY - len(key))), ctx_json))
    return len(rows)


def enqueue_all_keys(
    conn: sqlite3.Connection,
    table: str,
    pk: Sequence[str],
    after_key: Sequence | None = None,
    limit: int | None = None,
    op: str = "R",
) -> tuple | None:
    """Append an ``op`` row to the bulk lane for each key of ``table`` after ``after_key`` in
    PK order, at most ``limit``; returns the last key enqueued, or None when there are no more.

    One short transaction per call (keyset pagination, so the backfill never holds a long
    read open and starves WAL checkpoints). Runs in the caller's transaction if one is open.
    """
    t = _quote(table)
    pk_sql = ", ".join(_quote(k) for k in pk)
    n = len(pk)
    cols = ", ".join(f"k{i}" for i in range(1, n + 1))
    where, params = "", []
    if after_key is not None:
        after_key = tuple(after_key)
        if len(after_key) != n:
            raise LaneError(f"table {table!r} has a {n}-column key; got after_key={after_key!r}")
        where = f"WHERE ({pk_sql}) > ({', '.join(marker(v) for v in after_key)})"
        params = [bind(v) for v in after_key]
    order = f"ORDER BY {pk_sql}"
    lim = ""
    if limit is not None:
        lim = " LIMIT ?"
        params.append(int(limit))
    with immediate(conn, join=True):
        ensure_bulk(conn)
        conn.execute(
            f"INSERT INTO {TABLES[BULK]}(tbl, op, {cols}) SELECT ?, ?, {pk_sql} FROM {t} {where} {order}{lim}",
            [table, op, *params],
        )
        last = fetch_all(
            conn,
            f"SELECT {pk_sql} FROM (SELECT {pk_sql} FROM {t} {where} {order}{lim}) "
            f"ORDER BY {', '.join(_quote(k) + ' DESC' for k in pk)} LIMIT 1",
            params,
        )
    return tuple(last[0]) if last else None


def high_water(conn: sqlite3.Connection, lane: str) -> int:
    """Highest seq ever issued in ``lane`` (``sqlite_sequence`` survives pruning); 0 without it."""
    if not has_lane(conn, lane):
        return 0
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLES[lane],)).fetchone()
    top = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {TABLES[lane]}").fetchone()[0]
    return max(int(row[0]) if row else 0, int(top))


def depth(conn: sqlite3.Connection, lane: str, after_seq: int) -> tuple[int, float | None]:
    """(rows beyond ``after_seq``, capture time of the first of them).

    The first by ``seq`` is the oldest: rows are numbered in commit order (one writer at a
    time holds SQLite's write lock). Reading its ``ts`` by the primary key, instead of
    ``min(ts)`` over every row, makes this several times cheaper; the backfill asks it
    twice a second while up to its backlog limit of rows wait.
    """
    if not has_lane(conn, lane):
        return 0, None
    name = TABLES[lane]
    (count,) = conn.execute(f"SELECT count(*) FROM {name} WHERE seq > ?", (after_seq,)).fetchone()
    first = conn.execute(f"SELECT ts FROM {name} WHERE seq > ? ORDER BY seq LIMIT 1", (after_seq,)).fetchone()
    return int(count), (float(first[0]) if first is not None and first[0] is not None else None)


def pending_keys(conn: sqlite3.Connection, lane: str, table: str, width: int, after_seq: int) -> set[tuple]:
    """Keys of ``table`` with rows in ``lane`` beyond ``after_seq`` (not yet applied)."""
    if not has_lane(conn, lane):
        return set()
    cols = ", ".join(f"k{i}" for i in range(1, width + 1))
    return {tuple(r) for r in fetch_all(conn, f"SELECT {cols} FROM {TABLES[lane]} WHERE tbl = ? AND seq > ?",
                                        (table, after_seq))}


def read_outbox(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[OutboxRow]:
    """The live lane: what the capture triggers recorded."""
    return read(conn, LIVE, after_seq, limit)


def outbox_depth(conn: sqlite3.Connection, after_seq: int = 0) -> int:
    """Live-lane rows with ``seq > after_seq``."""
    return depth(conn, LIVE, after_seq)[0]


def prune_outbox(conn: sqlite3.Connection, upto_seq: int) -> int:
    """Delete live-lane rows with ``seq <= upto_seq`` in their own transaction (an acknowledged checkpoint)."""
    with immediate(conn, join=True):
        return prune(conn, LIVE, upto_seq)
