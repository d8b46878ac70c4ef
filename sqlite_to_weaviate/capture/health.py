"""Capture's health report: installed, triggers current, schema drift, outbox depth.

Kept apart from ``install.py`` because it reads drift (``drift.py``), which itself builds
on ``install.py``: the report sits above both, so neither imports the other in a circle.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from .drift import SCHEMA_KINDS, detect_drift
from .install import captured_tables, installed_triggers, tool_tables_exist
from .triggers import TRIGGER_VERSION


@dataclass(frozen=True)
class TableStatus:
    table: str
    triggers_installed: bool
    trigger_version: int
    version_current: bool
    schema_hash_matches: bool
    drift: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaptureStatus:
    """Whether capture is installed, per-table health and the outbox backlog."""

    installed: bool
    tables: tuple[TableStatus, ...] = ()
    outbox_depth: int = 0
    oldest_seq: int | None = None
    newest_seq: int | None = None
    drift: tuple = field(default_factory=tuple)


def status(conn: sqlite3.Connection) -> CaptureStatus:
    """Read-only health report (no transaction is written)."""
    if not tool_tables_exist(conn):
        return CaptureStatus(installed=False)
    drifts = detect_drift(conn)
    by_table: dict[str, list[str]] = {}
    for d in drifts:
        by_table.setdefault(d.table, []).append(d.kind)
    tables = []
    for rec in captured_tables(conn):
        kinds = by_table.get(rec.table, [])
        tables.append(
            TableStatus(
                table=rec.table,
                triggers_installed=bool(installed_triggers(conn, rec.table)) and "triggers_missing" not in kinds,
                trigger_version=rec.trigger_version,
                version_current=rec.trigger_version == TRIGGER_VERSION,
                schema_hash_matches=not any(k in SCHEMA_KINDS for k in kinds),
                drift=tuple(kinds),
            )
        )
    depth, lo, hi = conn.execute("SELECT count(*), min(seq), max(seq) FROM _s2w_outbox").fetchone()
    return CaptureStatus(True, tuple(tables), depth, lo, hi, tuple(drifts))
