"""Migration phases (stored in ``_s2w_state``) and the cutover readiness gate.

The phase (``store.phase``) lives in the app's SQLite file next to the checkpoints it summarises, so it
survives any sidecar crash and every command (``status``, ``ready``, ``run``, ``migrate``)
sees the same answer. Phases only move forward on evidence (init done, backfill
checkpoints done and applied, a clean verify); re-running any step is idempotent, which
is what makes each phase resumable.

The readiness gate is deliberately computed from durable facts each time it is asked,
never from the stored phase alone: a phase-4 database that has since grown a lag or a
dead letter is *not* ready, and the gate says why.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.store.phase import (  # noqa: F401 - the phase API lives in the store; re-exported for operate
    PHASE_KEY, VERIFY_KEY, Phase, get_phase, last_verification, record_verification, set_phase, uninstalled_at,
)
from sqlite_to_weaviate.store.progress import read_progress
from sqlite_to_weaviate.store.state import BACKFILL_PREFIX, items_with_prefix

@dataclass
class Readiness:
    """The cutover gate: ``ready`` only when every check passed; ``reasons`` say why not."""

    ready: bool
    phase: Phase
    checks: dict[str, bool] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = {"number": int(self.phase), "name": self.phase.label}
        return data


def backfill_states(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """``backfill.<table>`` checkpoints (the pause flag excluded)."""
    out = {}
    for key, value in items_with_prefix(conn, BACKFILL_PREFIX):
        try:
            data = json.loads(value)
        except ValueError:
            continue
        if isinstance(data, dict):
            out[key.removeprefix(BACKFILL_PREFIX)] = data
    return out


def evaluate_readiness(conn: sqlite3.Connection, mapped_tables: list[str], *, max_verify_age_s: float = 3600.0,
                       now: float | None = None) -> Readiness:
    """Check the gate on an open (read-only is enough) connection to the app's database."""
    now = time.time() if now is None else now
    phase = get_phase(conn)
    checks: dict[str, bool] = {}
    reasons: list[str] = []
    facts: dict[str, Any] = {}
    installed = tool_objects.has_table(conn, "_s2w_outbox") and tool_objects.has_table(conn, "_s2w_state")
    checks["capture_installed"] = installed
    if not installed:
        reasons.append("capture is not installed (run `sqlite-to-weaviate init` or `migrate`)")
        return Readiness(False, phase, checks, reasons, facts)
    p = read_progress(conn)
    depth = p.live.depth + p.bulk.depth
    lag = 0.0 if p.live.oldest_ts is None else round(now - p.live.oldest_ts, 3)
    facts.update(outbox_depth=p.live.depth, bulk_backlog=p.bulk.depth, lag_s=lag)
    checks["outbox_drained"] = depth == 0
    if p.live.depth:
        reasons.append(f"{p.live.depth} captured change(s) not yet applied (lag {lag:.1f}s)")
    if p.bulk.depth:
        reasons.append(f"{p.bulk.depth} backfill/repair key(s) not yet applied")
    owed = p.owed
    facts["resends_pending"] = owed
    checks["no_resends_pending"] = owed == 0
    if owed:
        reasons.append(f"{owed} key(s) still owed a re-send after a fault (the relay sends them when due)")
    states = backfill_states(conn)
    not_done = [t for t in mapped_tables if not states.get(t, {}).get("done")]
    checks["backfill_done"] = not not_done
    if not_done:
        reasons.append(f"backfill not finished for: {', '.join(sorted(not_done))}")
    dead = p.dead_letters
    facts["dead_letters"] = int(dead)
    checks["no_dead_letters"] = dead == 0
    if dead:
        reasons.append(f"{dead} dead letter(s): rows missing from Weaviate (see `dead-letters list`)")
    verification = last_verification(conn)
    facts["last_verify"] = verification
    if verification is None:
        checks["verify_clean"] = checks["verify_recent"] = False
        reasons.append("no verify has run yet (run `sqlite-to-weaviate verify`)")
    else:
        checks["verify_clean"] = bool(verification.get("clean"))
        if not checks["verify_clean"]:
            refused = int(verification.get("refused") or 0)
            reasons.append(f"last verify found {verification.get('differences', '?')} difference(s)"
                           + (f", {refused} of them refused row(s) not in Weaviate" if refused else ""))
        age = now - float(verification.get("at", 0))
        checks["verify_recent"] = age <= max_verify_age_s
        if not checks["verify_recent"]:
            reasons.append(f"last verify is {age:.0f}s old (limit {max_verify_age_s:.0f}s): run verify again")
        done_at = max((float(s.get("updated_at") or 0) for s in states.values()), default=0.0)
        if checks["verify_clean"] and float(verification.get("at", 0)) < done_at:
            checks["verify_recent"] = False
            reasons.append("last verify ran before the backfill finished: run verify again")
    return Readiness(not reasons, phase, checks, reasons, facts)


def readiness(settings: Settings, *, max_verify_age_s: float = 3600.0) -> Readiness:
    """The gate for ``settings``' database (read-only: asking never writes anything)."""
    conn = settings.open_db(readonly=True)
    try:
        tables = sorted(settings.load_mapping(conn).tables)
        return evaluate_readiness(conn, tables, max_verify_age_s=max_verify_age_s)
    finally:
        conn.close()
