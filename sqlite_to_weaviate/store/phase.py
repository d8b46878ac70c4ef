"""The migration phase and the last verify's summary, kept in ``_s2w_state``.

The phase lives in the app's SQLite file next to the checkpoints it summarises, so it
survives any sidecar crash and every command (``status``, ``ready``, ``run``, ``migrate``)
sees the same answer. Phases only move forward on evidence (init done, backfill
checkpoints done and applied, a clean verify). The gate that decides readiness from these
facts is ``operate.phases``.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import time
from typing import Any

from . import registry as tool_objects
from .state import StateKey, ensure_state_table, get_state, has_state_table, set_state
from .txn import immediate

PHASE_KEY = StateKey.PHASE
VERIFY_KEY = StateKey.VERIFY_LAST


class Phase(enum.IntEnum):
    """The five phases of a zero-downtime migration (0: nothing installed yet)."""

    NONE = 0
    SCHEMA = 1      # capture installed, collections created and validated
    BACKFILL = 2    # historical rows streaming through the outbox
    LIVE = 3        # backfill applied; dual-write keeps Weaviate current
    VERIFIED = 4    # a clean verify with no lag: ready for cutover
    CLEANUP = 5     # capture being removed after cutover

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Phase.NONE: "not started",
    Phase.SCHEMA: "schema created and validated",
    Phase.BACKFILL: "historical backfill",
    Phase.LIVE: "dual-write live",
    Phase.VERIFIED: "verified and ready for cutover",
    Phase.CLEANUP: "cleanup",
}


def _has_state(conn: sqlite3.Connection) -> bool:
    return has_state_table(conn)


def uninstalled_at(conn: sqlite3.Connection) -> float | None:
    """When ``uninstall`` removed capture after cutover (phase 5), or None if it never did."""
    return tool_objects.created_at(conn, tool_objects.MILESTONE, tool_objects.UNINSTALLED)


def get_phase(conn: sqlite3.Connection) -> Phase:
    """The recorded phase (NONE when capture was never installed or was rolled back).

    After ``uninstall`` the state table is gone but the registry keeps the cutover
    milestone, so the answer stays 5 (cleanup) until a new ``init``.
    """
    if not _has_state(conn):
        return Phase.CLEANUP if uninstalled_at(conn) is not None else Phase.NONE
    raw = get_state(conn, PHASE_KEY)
    if not raw:
        return Phase.NONE
    try:
        return Phase(int(json.loads(raw)["number"]))
    except (ValueError, KeyError, TypeError):
        return Phase.NONE


def set_phase(conn: sqlite3.Connection, phase: Phase, *, allow_backwards: bool = False) -> Phase:
    """Record ``phase`` (never moving backwards unless asked); returns the phase now stored."""
    with immediate(conn):
        ensure_state_table(conn)
        current = get_phase(conn)
        if phase < current and not allow_backwards:
            return current
        set_state(conn, PHASE_KEY, json.dumps({"number": int(phase), "name": phase.label, "at": time.time()}))
    return phase


def record_verification(conn: sqlite3.Connection, summary: dict[str, Any]) -> None:
    """Keep the last verify result (with its time) for the readiness gate and metrics."""
    with immediate(conn):
        ensure_state_table(conn)
        set_state(conn, VERIFY_KEY, json.dumps({"at": time.time(), **summary}, default=str))


def last_verification(conn: sqlite3.Connection) -> dict[str, Any] | None:
    if not _has_state(conn):
        return None
    raw = get_state(conn, VERIFY_KEY)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
