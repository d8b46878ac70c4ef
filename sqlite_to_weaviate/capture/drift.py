"""Schema drift: detect what changed under installed triggers, and repair it without loss.

Facts this module is built on (SQLite 3.40): ADD COLUMN leaves triggers working but blind to
the new column (an update of only that column looks like a no-op); RENAME COLUMN rewrites the
trigger text; RENAME TABLE re-attaches the triggers but keeps the old name literal they write
into the outbox; DROP TABLE and create-copy-drop-rename rebuilds drop the triggers silently.
Detection compares the live schema with the description stored at install time. Repair
regenerates triggers in one ``BEGIN IMMEDIATE`` and appends an ``R`` row for every key of an
affected table in that same transaction, so changes made while the triggers were missing or
blind reach Weaviate through the relay's read of the current row.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .errors import CaptureError
from .install import (
    DEFAULT_CAPTURED_BY,
    captured_tables,
    install_table,
    installed_triggers,
    table_hash,
    tool_tables_exist,
)
from .tables import canonical_table_name, describe, table_info
from .triggers import TRIGGER_VERSION, all_trigger_names, generate_triggers
from sqlite_to_weaviate.store.txn import immediate

#: Kinds that mean the table's schema differs from what the triggers were generated for.
SCHEMA_KINDS = ("column_added", "column_dropped", "column_renamed", "schema_changed")
KINDS = SCHEMA_KINDS + ("table_renamed", "table_missing", "triggers_missing", "triggers_altered",
                        "trigger_version_outdated")


@dataclass(frozen=True)
class Drift:
    """One detected difference; ``new_name`` is set for ``table_renamed``."""

    table: str
    kind: str
    detail: str
    new_name: str | None = None


def _column_drift(table: str, old: dict, new: dict) -> list[Drift]:
    old_cols = [c[0] for c in old["columns"]]
    new_cols = [c[0] for c in new["columns"]]
    added = [c for c in new_cols if c not in old_cols]
    dropped = [c for c in old_cols if c not in new_cols]
    out = []
    if len(old_cols) == len(new_cols) and added and [c[1:] for c in old["columns"]] == [c[1:] for c in new["columns"]]:
        pairs = [f"{a!r} -> {b!r}" for a, b in zip(old_cols, new_cols) if a != b]
        return [Drift(table, "column_renamed", ", ".join(pairs))]
    if added:
        out.append(Drift(table, "column_added", ", ".join(map(repr, added))))
    if dropped:
        out.append(Drift(table, "column_dropped", ", ".join(map(repr, dropped))))
    if not out:
        out.append(Drift(table, "schema_changed", "column types, key or unique indexes changed"))
    return out


def _renamed_to(conn: sqlite3.Connection, table: str) -> str | None:
    names = all_trigger_names(table)
    marks = ", ".join("?" * len(names))
    row = conn.execute(
        f"SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks}) LIMIT 1", names
    ).fetchone()
    return None if row is None else row[0]


def detect_drift(conn: sqlite3.Connection) -> list[Drift]:
    """Every difference between the installed capture and the live schema (read-only)."""
    if not tool_tables_exist(conn):
        return []
    out: list[Drift] = []
    for rec in captured_tables(conn):
        live = canonical_table_name(conn, rec.table)
        if live != rec.table:
            target = _renamed_to(conn, rec.table)
            if target is not None and target != rec.table:
                out.append(Drift(rec.table, "table_renamed", f"renamed to {target!r}", new_name=target))
            else:
                out.append(Drift(rec.table, "table_missing", "table was dropped; the verifier removes its objects"))
            continue
        try:
            info = table_info(conn, rec.table)
        except CaptureError as exc:
            out.append(Drift(rec.table, "schema_changed", str(exc)))
            continue
        triggers = generate_triggers(info, skip_noop_updates=rec.skip_noop_updates)
        current = installed_triggers(conn, rec.table)
        missing = [t.name for t in triggers if t.name not in current]
        if missing:
            out.append(Drift(rec.table, "triggers_missing", ", ".join(missing)))
        if rec.trigger_version != TRIGGER_VERSION:
            out.append(Drift(rec.table, "trigger_version_outdated", f"v{rec.trigger_version} < v{TRIGGER_VERSION}"))
        if rec.schema_hash != table_hash(info, triggers):
            out.extend(_column_drift(rec.table, rec.description, describe(info)))
        elif not missing and current != {t.name: t.sql for t in triggers}:
            out.append(Drift(rec.table, "triggers_altered", "installed trigger SQL differs from generated"))
    return out


@dataclass(frozen=True)
class RepairReport:
    drift: tuple[Drift, ...]
    reinstalled: tuple[str, ...]
    forgotten: tuple[str, ...]


def repair_drift(conn: sqlite3.Connection, *, captured_by: str = DEFAULT_CAPTURED_BY) -> RepairReport:
    """Regenerate triggers for every drifted table and enqueue ``R`` for all its keys, atomically.

    A renamed table is followed to its new name (its old-name record is replaced); a dropped
    table is forgotten (its objects are extras the verifier deletes). Rows deleted while
    triggers were missing leave no key to re-sync: the verifier finds those too.
    """
    with immediate(conn):
        drifts = detect_drift(conn)
        records = {c.table: c for c in captured_tables(conn)}
        reinstalled, forgotten = [], []
        for table in dict.fromkeys(d.table for d in drifts):
            kinds = {d.kind: d for d in drifts if d.table == table}
            rec = records[table]
            target = table
            if "table_missing" in kinds or "table_renamed" in kinds:
                conn.execute("DELETE FROM _s2w_capture WHERE tbl = ?", (table,))
                forgotten.append(table)
                if "table_missing" in kinds:
                    continue
                target = kinds["table_renamed"].new_name
            try:
                name, _, _ = install_table(
                    conn, target, captured_by=captured_by,
                    skip_noop_updates=rec.skip_noop_updates, force_resync=True,
                )
            except sqlite3.Error as exc:
                raise CaptureError(f"cannot repair capture on table {target!r}: {exc}") from exc
            reinstalled.append(name)
    return RepairReport(tuple(drifts), tuple(reinstalled), tuple(forgotten))
