"""Which Weaviate collections rollback may delete whole, and which only lose the tool's objects.

Rollback must remove what the migration made and nothing else. The evidence, most exact
first:

1. **The registry** (``_s2w_objects``, type ``collection``): a row is written right after
   the tool's own create call succeeded (``init``, ``migrate``, ``run``, the relay's schema
   follower), so it names exactly the collections the tool created, under whatever prefix
   or mapping was in force then. These are deleted whole.
2. **The legacy record** of versions before the registry: ``_s2w_state`` key
   ``migration.collections``, written once at the first ``init`` with the mapped
   collections that existed then. It cannot see a collection mapped, or prefixed
   differently, after that first ``init``, so for a mapped collection it does not list as
   pre-existing it is only a hint: such a collection is deleted whole only when every
   object in it carries the tool's content hash; otherwise it is treated like 3.
3. **Any other mapped collection**: it was there before the tool needed it; it keeps its
   own objects and loses only those carrying ``s2wContentHash`` (which only the tool writes).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.store.state import StateKey, get_state
from sqlite_to_weaviate.store.state import has_state_table

LEGACY_OWNERSHIP_KEY = StateKey.LEGACY_OWNERSHIP

DELETE_WHOLE = "delete"             # the tool created it
DELETE_IF_ONLY_OURS = "legacy"      # the legacy record says created; check there is no foreign object
DELETE_OUR_OBJECTS = "objects"      # not created by the tool


@dataclass(frozen=True)
class CollectionPlan:
    name: str
    action: str
    reason: str


def legacy_preexisting(conn: sqlite3.Connection) -> set[str] | None:
    """Collections the pre-registry record lists as existing before the first ``init`` (None: no record)."""
    if not has_state_table(conn):
        return None
    raw = get_state(conn, LEGACY_OWNERSHIP_KEY)
    if not raw:
        return None
    try:
        return set(json.loads(raw)["preexisting"])
    except (ValueError, KeyError, TypeError):
        return None


def plan_collections(conn: sqlite3.Connection, mapped: list[str]) -> list[CollectionPlan]:
    """What rollback does with each collection: ``mapped`` (reference order, targets first) + created ones."""
    created = tool_objects.collections(conn)  # creation order: reference targets first
    created_folded = {tool_objects.fold(n) for n in created}
    mapped_folded = {tool_objects.fold(n) for n in mapped}
    unmapped = [n for n in created if tool_objects.fold(n) not in mapped_folded]  # e.g. an earlier prefix
    legacy = legacy_preexisting(conn)
    plans: list[CollectionPlan] = []
    for name in unmapped[::-1] + mapped[::-1]:  # collections holding references go before their targets
        if tool_objects.fold(name) in created_folded:
            plans.append(CollectionPlan(name, DELETE_WHOLE, "created by the migration"))
        elif legacy is not None and name not in legacy:
            plans.append(CollectionPlan(name, DELETE_IF_ONLY_OURS,
                                        "recorded by an earlier version as created by the migration"))
        else:
            plans.append(CollectionPlan(name, DELETE_OUR_OBJECTS, "existed before the migration"))
    return plans
