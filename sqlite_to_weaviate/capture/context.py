"""Per-transaction context (actor, origin, correlation id) attached to captured changes.

Triggers are the only writers of change rows. Hooks that want to add context write one row
into ``_s2w_context`` after ``BEGIN`` and delete it before ``COMMIT``; every trigger copies
``(SELECT ctx FROM _s2w_context WHERE id = 1)`` into the outbox row. Writers serialize on
SQLite's write lock, so the row is only ever visible to the transaction that wrote it: no
double capture and no context leaking to other writers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def encode_context(ctx: Mapping[str, Any]) -> str:
    """Compact, deterministic JSON; values JSON cannot hold become strings."""
    return json.dumps(dict(ctx), sort_keys=True, separators=(",", ":"), default=str)


def write_context(dbapi_conn: Any, ctx: Mapping[str, Any]) -> None:
    """Set the current transaction's context (a DBAPI sqlite3 connection in a transaction)."""
    dbapi_conn.execute(
        "INSERT OR REPLACE INTO _s2w_context(id, ctx) VALUES (1, ?)", (encode_context(ctx),)
    )


def clear_context(dbapi_conn: Any) -> None:
    """Remove the context row; call before COMMIT so it never outlives the transaction."""
    dbapi_conn.execute("DELETE FROM _s2w_context")
