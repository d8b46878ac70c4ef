"""Repair: re-enqueue differing keys through the outbox; delete the tool's extras that have no row.

Re-enqueueing (op "R", ctx origin "verify --repair") makes a repair an ordinary change:
the relay reads the *current* row when it dispatches and orders it with live traffic per
key, so a repair can never overwrite a newer live change. Missing, stale and
field-mismatched objects are repaired this way.

An extra object has no row, so it has no key to enqueue (the uuid is a one-way hash of the
key). Only extras carrying the tool's content hash are passed here: an object without
``s2wContentHash`` was not written by the tool (a collection shared with other writers),
so verify reports it as *foreign* and never deletes it. An extra of the tool's is deleted directly with ``delete_many`` on its ids, in chunks of at most 1000
(Weaviate caps one delete at 10,000 matches). That is safe because the verifier confirmed
there is no row for that uuid, and the only way a row for it can appear is a later insert
of that key, which is captured in the outbox and applied after it commits. The one
remaining window (an insert committed and applied between the confirmation and the
delete) is closed by the re-verification after repair, which looks the deleted uuids up
among the table's keys again and re-enqueues any key it finds.
"""

from __future__ import annotations

import sqlite3
import uuid as uuid_mod
from collections.abc import Sequence
from typing import Any

from sqlite_to_weaviate.store.lanes import enqueue_keys
from sqlite_to_weaviate.mapping import TableMapping

from .target import delete_objects

REPAIR_CTX = {"origin": "verify --repair"}


def enqueue_repairs(conn: sqlite3.Connection, table: TableMapping, keys: Sequence[tuple]) -> int:
    """Append one "R" outbox row per key (one transaction); returns how many."""
    if not keys:
        return 0
    return enqueue_keys(conn, table.table, list(keys), width=len(table.primary_key), op="R", ctx=dict(REPAIR_CTX))


def replace_unindexed(client: Any, conn: sqlite3.Connection, table: TableMapping,
                      found: Sequence[tuple[bytes, tuple | None]]) -> tuple[int, int]:
    """Objects stored but missing from the index: delete each by id, re-enqueue its key.

    Re-writing the same content does not repair Weaviate's index (only changed properties
    are re-indexed), so the object is deleted by id first; the key then goes through the
    outbox like any repair, and the relay writes the current row as a fresh object.
    Returns (deleted, enqueued).
    """
    from sqlite_to_weaviate.weaviate_deletes import delete_by_ids

    for tenant_handle in _handles(client, table):
        delete_by_ids(tenant_handle, [str(uuid_mod.UUID(bytes=u)) for u, _ in found])
    keys = [key for _, key in found if key is not None]
    return len(found), enqueue_repairs(conn, table, keys)


def _handles(client: Any, table: TableMapping) -> list[Any]:
    from .target import _handle, tenants

    return [_handle(client, table, tenant, writing=True) for tenant in tenants(client, table)]


def delete_extras(client: Any, table: TableMapping, uuids: Sequence[bytes]) -> int:
    """Delete objects that have no row (see module docstring for why this is safe)."""
    if not uuids:
        return 0
    return delete_objects(client, table, [uuid_mod.UUID(bytes=u) for u in uuids])
