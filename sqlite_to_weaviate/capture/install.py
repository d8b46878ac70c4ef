"""Install, uninstall and inspect capture in one SQLite file, atomically.

Every function here runs in a single ``BEGIN IMMEDIATE`` transaction: either all requested
tables get their triggers (test-compiled in a SAVEPOINT before COMMIT) and their bookkeeping
row, or nothing changes and :class:`CaptureError` names the table and the reason. Installing
twice is harmless. When a table's triggers were missing, outdated or blind to its current
schema, reinstalling also appends an ``R`` (re-sync) outbox row for every key of the table in
the same transaction, so no change made while capture was impaired is lost: the relay reads
the current row of each key.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlite_to_weaviate.store import registry as tool_objects

from .errors import CaptureError
from .identifiers import quote_ident
from sqlite_to_weaviate.store.lanes import BULK_DDL, OUTBOX_DDL, enqueue_all_keys
from sqlite_to_weaviate.store.state import STATE_DDL

from .tables import TableInfo, describe, hash_description, table_info, user_tables
from .triggers import TRIGGER_VERSION, Trigger, generate_triggers, trigger_name, TRIGGER_SUFFIXES
from sqlite_to_weaviate.store.txn import immediate

DEFAULT_CAPTURED_BY = "sqlite-to-weaviate"


@dataclass(frozen=True)
class InstallReport:
    """What :func:`install` did: tables installed, skipped (with why), re-synced, warnings."""

    installed: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    resynced: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CapturedTable:
    """One row of ``_s2w_capture``."""

    table: str
    schema_hash: str
    trigger_version: int
    installed_at: float
    pk_columns: tuple[str, ...]
    description: dict
    skip_noop_updates: bool


#: The tables ``install`` creates, in creation order.
CONTEXT_DDL = "CREATE TABLE IF NOT EXISTS _s2w_context (id INTEGER PRIMARY KEY CHECK (id = 1), ctx TEXT)"
CAPTURE_DDL = (
    "CREATE TABLE IF NOT EXISTS _s2w_capture (tbl TEXT PRIMARY KEY, schema_hash TEXT, "
    "trigger_version INTEGER, installed_at REAL, pk_columns TEXT, description TEXT, "
    "skip_noop_updates INTEGER, captured_by TEXT)"
)
INSTALL_TABLES = (("_s2w_outbox", OUTBOX_DDL), ("_s2w_bulk", BULK_DDL), ("_s2w_context", CONTEXT_DDL),
                  ("_s2w_state", STATE_DDL), ("_s2w_capture", CAPTURE_DDL))


def tool_tables_exist(conn: sqlite3.Connection) -> bool:
    return tool_objects.has_table(conn, "_s2w_outbox") and tool_objects.has_table(conn, "_s2w_capture")


def captured_tables(conn: sqlite3.Connection) -> list[CapturedTable]:
    """Tables recorded as captured (empty when capture is not installed)."""
    if not tool_tables_exist(conn):
        return []
    rows = conn.execute(
        "SELECT tbl, schema_hash, trigger_version, installed_at, pk_columns, description, "
        "skip_noop_updates FROM _s2w_capture ORDER BY tbl"
    ).fetchall()
    return [
        CapturedTable(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), json.loads(r[5]), bool(r[6]))
        for r in rows
    ]


def installed_triggers(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """name -> SQL of capture's triggers currently attached to ``table`` (the app's own triggers excluded)."""
    ours = tool_objects.registered(conn, tool_objects.TRIGGER)
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)).fetchall()
    return {name: sql for name, sql in rows if tool_objects.fold(name) in ours}


def name_conflicts(conn: sqlite3.Connection, tables: Iterable[str]) -> list[str]:
    """Names capture needs (its tables, the triggers of ``tables``) held by objects it did not create."""
    problems = []
    for name in tool_objects.TOOL_TABLES:
        problem = tool_objects.conflict(conn, tool_objects.TABLE, name, tool_objects.TOOL_TABLES[name])
        if problem:
            problems.append(problem)
    for table in tables:
        for suffix in TRIGGER_SUFFIXES:
            problem = tool_objects.conflict(conn, tool_objects.TRIGGER, trigger_name(table, suffix),
                                            f"capture trigger on table {table!r}")
            if problem:
                problems.append(problem)
    return problems


def check_names(conn: sqlite3.Connection, tables: Iterable[str]) -> None:
    """Raise :class:`~sqlite_to_weaviate.store.registry.NameTaken` listing every collision (read-only)."""
    problems = name_conflicts(conn, tables)
    if problems:
        raise tool_objects.NameTaken("; ".join(problems) + "; nothing was changed")


def table_hash(info: TableInfo, triggers: list[Trigger]) -> str:
    return hash_description(describe(info), [t.sql for t in triggers])


def schema_hash(conn: sqlite3.Connection, table: str, *, skip_noop_updates: bool = True) -> str:
    """sha256 of the table's columns, unique indexes and the trigger SQL generated from them."""
    info = table_info(conn, table)
    return table_hash(info, generate_triggers(info, skip_noop_updates=skip_noop_updates))


def _create_tool_tables(conn: sqlite3.Connection) -> None:
    for name, ddl in INSTALL_TABLES:
        tool_objects.create_table(conn, name, ddl)


def _drop_triggers(conn: sqlite3.Connection, table: str) -> None:
    """Drop capture's triggers on ``table``; the app's own triggers, whatever their names, stay."""
    for name in installed_triggers(conn, table):
        tool_objects.drop_trigger(conn, name)


def _test_fire(conn: sqlite3.Connection, info: TableInfo) -> None:
    """Compile an INSERT, an UPDATE of every column and a DELETE on the table.

    Triggers are compiled into the statement's program, so a trigger that references a missing
    column or table fails here, inside a SAVEPOINT, instead of failing the app's next write.
    """
    t = quote_ident(info.name)
    sets = ", ".join(f"{quote_ident(c.name)} = {quote_ident(c.name)}" for c in info.writable_columns)
    conn.execute("SAVEPOINT s2w_test_fire")
    try:
        conn.execute(f"EXPLAIN INSERT INTO {t} DEFAULT VALUES").fetchall()
        conn.execute(f"EXPLAIN UPDATE {t} SET {sets}").fetchall()
        conn.execute(f"EXPLAIN DELETE FROM {t}").fetchall()
    finally:
        conn.execute("ROLLBACK TO s2w_test_fire")
        conn.execute("RELEASE s2w_test_fire")


def needs_resync(conn: sqlite3.Connection, info: TableInfo, triggers: list[Trigger]) -> bool:
    """True when the table was captured before and its triggers are missing, stale or outdated."""
    row = conn.execute(
        "SELECT schema_hash, trigger_version FROM _s2w_capture WHERE tbl = ?", (info.name,)
    ).fetchone()
    if row is None:
        return False  # first install: historical rows are the backfill's job
    current = installed_triggers(conn, info.name)
    wanted = {t.name: t.sql for t in triggers}
    return row[0] != table_hash(info, triggers) or row[1] != TRIGGER_VERSION or current != wanted


def install_table(
    conn: sqlite3.Connection,
    table: str,
    *,
    captured_by: str,
    skip_noop_updates: bool,
    force_resync: bool = False,
) -> tuple[str, bool, list[str]]:
    """(Re)install one table inside the caller's transaction; returns (name, resynced, warnings)."""
    info = table_info(conn, table)
    triggers = generate_triggers(info, skip_noop_updates=skip_noop_updates)
    resync = force_resync or needs_resync(conn, info, triggers)
    _drop_triggers(conn, info.name)
    for trig in triggers:
        tool_objects.create_trigger(conn, trig.name, trig.sql)
    _test_fire(conn, info)
    conn.execute(
        "INSERT OR REPLACE INTO _s2w_capture(tbl, schema_hash, trigger_version, installed_at, "
        "pk_columns, description, skip_noop_updates, captured_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            info.name, table_hash(info, triggers), TRIGGER_VERSION, time.time(), json.dumps(list(info.pk)),
            json.dumps(describe(info)), int(skip_noop_updates), captured_by,
        ),
    )
    if resync:
        enqueue_all_keys(conn, info.name, info.pk)  # the bulk lane: a resync is history, live changes go first
    warnings = [
        f"table {info.name!r}: unique index {u.name!r} is on an expression; a row it makes "
        "INSERT OR REPLACE delete is captured only when the writer has recursive_triggers=ON "
        "(capture.attach sets it); otherwise the verifier finds the orphan"
        for u in info.unique_indexes
        if u.expression
    ]
    return info.name, resync, warnings


def install(
    conn: sqlite3.Connection,
    tables: Iterable[str] | None = None,
    *,
    captured_by: str = DEFAULT_CAPTURED_BY,
    skip_noop_updates: bool = True,
) -> InstallReport:
    """Create the tool tables and (re)create capture triggers for ``tables``, atomically.

    ``tables=None`` means every user table with a declared primary key; tables without one
    are then skipped (listed in the report with the reason) instead of refused.
    """
    installed, skipped, resynced, warnings = [], [], [], []
    with immediate(conn):
        if tables is None:
            names = []
            for t in user_tables(conn):
                try:
                    table_info(conn, t)
                except CaptureError as exc:
                    skipped.append((t, str(exc)))
                    continue
                names.append(t)
        else:
            names = list(tables)
        check_names(conn, names)
        _create_tool_tables(conn)
        for t in names:
            try:
                name, resync, warn = install_table(
                    conn, t, captured_by=captured_by, skip_noop_updates=skip_noop_updates
                )
            except sqlite3.Error as exc:
                raise CaptureError(f"cannot install capture on table {t!r}: {exc}") from None
            installed.append(name)
            warnings.extend(warn)
            if resync:
                resynced.append(name)
    return InstallReport(tuple(installed), tuple(skipped), tuple(resynced), tuple(warnings))


#: Tool tables that ``uninstall(drop_outbox=False)`` keeps so pending changes can still be relayed.
KEPT_WITH_OUTBOX = ("_s2w_outbox", "_s2w_bulk", "_s2w_state", "_s2w_dead_letters", "_s2w_resends")


def uninstall(conn: sqlite3.Connection, *, drop_outbox: bool = True, tables: Iterable[str] | None = None) -> None:
    """Remove capture triggers (all, or only ``tables``'s) and, unless asked not to, the tool tables.

    Only what the registry says the tool created is dropped: the app's own triggers and
    tables stay, whatever their names. Triggers are dropped before the outbox in the same
    transaction: an outbox dropped under live triggers would make every application write
    fail. ``drop_outbox=False`` keeps the outbox, checkpoints and dead letters so pending
    changes can still be relayed. The registry itself goes last, and only when it records
    nothing else (a record of Weaviate collections or of a cutover is kept).
    """
    with immediate(conn):
        if not tool_objects.present(conn):
            return
        tool_objects.ensure(conn)  # adopts a pre-registry install, so it can be removed exactly
        if tables is not None:
            for t in tables:
                _drop_triggers(conn, t)
                if tool_tables_exist(conn):
                    conn.execute("DELETE FROM _s2w_capture WHERE tbl = ?", (t,))
            return
        for name in list(tool_objects.registered(conn, tool_objects.TRIGGER).values()):
            tool_objects.drop_trigger(conn, name)
        for name in list(tool_objects.registered(conn, tool_objects.TABLE).values()):
            if drop_outbox or name.lower() not in KEPT_WITH_OUTBOX:
                tool_objects.drop_table(conn, name)
        tool_objects.drop_registry(conn)


@contextmanager
def schema_change(conn: sqlite3.Connection, tables: Iterable[str]) -> Iterator[sqlite3.Connection]:
    """Alter captured tables safely: ``with schema_change(conn, ["t"]): conn.execute("ALTER ...")``.

    Inside one ``BEGIN IMMEDIATE`` the tables' triggers are dropped (SQLite refuses
    ``DROP COLUMN`` on a column a trigger names), the block runs, then the triggers are
    regenerated from the new schema with an ``R`` row for every key. No other writer can
    commit in between, so nothing is missed. A table dropped in the block is forgotten; a
    table renamed in the block is not followed (run :func:`install` on its new name, or let
    :func:`~sqlite_to_weaviate.capture.drift.repair_drift` handle it).
    """
    names = list(tables)
    with immediate(conn):
        captured = {c.table: c for c in captured_tables(conn)}
        for t in names:
            _drop_triggers(conn, t)
        yield conn
        for t in names:
            rec = captured.get(t)
            if table_info_exists(conn, t):
                install_table(
                    conn, t, captured_by=DEFAULT_CAPTURED_BY,
                    skip_noop_updates=rec.skip_noop_updates if rec else True, force_resync=True,
                )
            else:
                conn.execute("DELETE FROM _s2w_capture WHERE tbl = ?", (t,))


def table_info_exists(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None
