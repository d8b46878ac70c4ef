"""Which Weaviate collections a migration created, recorded before it creates any.

Rollback must remove what the migration made and nothing else: a collection it created is
deleted whole, a collection that already existed keeps its own objects and loses only the
ones the pipeline wrote. So before ``init`` runs, the set of mapped collections that
already exist is stored in ``_s2w_state`` — once: re-running ``init`` (which then finds
every collection present) must not rewrite history.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlite_to_weaviate.capture import get_state, set_state
from sqlite_to_weaviate.capture.state import STATE_DDL
from sqlite_to_weaviate.capture.txn import immediate
from sqlite_to_weaviate.settings import Settings

OWNERSHIP_KEY = "migration.collections"


def mapped_collections(settings: Settings) -> list[str]:
    conn = settings.open_db(readonly=True)
    try:
        return sorted(t.collection for t in settings.load_mapping(conn).tables.values())
    finally:
        conn.close()


def load_ownership(conn: Any) -> dict[str, Any] | None:
    has_state = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='_s2w_state'").fetchone()
    if not has_state:
        return None
    raw = get_state(conn, OWNERSHIP_KEY)
    return json.loads(raw) if raw else None


def record_preexisting(settings: Settings, client: Any) -> dict[str, Any]:
    """Store which mapped collections exist *before* this migration (first call wins)."""
    names = mapped_collections(settings)
    conn = settings.open_db()
    try:
        existing = load_ownership(conn)
        if existing is not None:
            return existing
        record = {"preexisting": sorted(n for n in names if client.collections.exists(n)), "at": time.time()}
        with immediate(conn):
            conn.execute(STATE_DDL)
            if get_state(conn, OWNERSHIP_KEY) is None:
                set_state(conn, OWNERSHIP_KEY, json.dumps(record))
        return record
    finally:
        conn.close()


def initialize_recorded(settings: Settings):  # -> InitReport
    """``initialize`` preceded by the ownership record; what ``init`` and ``migrate`` should call."""
    from sqlite_to_weaviate.initialize import initialize

    client = settings.connect_weaviate()
    try:
        record_preexisting(settings, client)
    finally:
        client.close()
    return initialize(settings)
