"""Settle candidate differences under live writes: re-observe until each one is stable.

A difference seen by the streaming scan may just be a change in flight: the row changed
after it was staged, or the pipeline has not applied it yet. Each candidate is therefore
*observed* again, after waiting for the relay checkpoint to pass the outbox high-water
mark, with this sandwich::

    read txn A: current row, relay checkpoint, keys still pending in the outbox
    fetch the object's content hash from Weaviate
    read txn B: the same again

If the object's hash equals the row's hash in A or in B, the object was right at that
instant and the candidate is settled as a change in flight, even for a hot key that is
never quiet. So is a key still pending whose object changed between two observations:
the pipeline is applying that key's changes as they come (and will rewrite it from the
current row once more, since it is pending). Otherwise an observation is *stable* when
the key is pending in neither A nor B (every committed change to it is applied) and the
row hash is the same in A and B;
a stable observation that still differs is one vote for a real difference. A difference
is only *confirmed* after two stable observations agree, separated by a catch-up wait;
this also covers the one race the sandwich cannot see (a change committed and applied
between A and the fetch, then reverted before B). Candidates that never become stable
before the deadline are reported as *unsettled*, never as differences.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate.mapping import TableMapping, content_hash
import uuid as uuid_mod

from . import live
from .replicas import reads_by_id
from .target import UNINDEXED, FetchedObject, fetch_hashes_by_id, fetch_objects, stored_but_unindexed

CHUNK = 200


@dataclass
class Candidate:
    """A uuid that differed; ``key`` is None when no row is known for it (an extra)."""

    uuid: bytes
    key: tuple | None
    row_hash: str | None = None
    object_hash: str | None = None
    row: dict[str, Any] | None = None
    observations: list[tuple[str | None, str | None]] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return self.row_hash != self.object_hash


@dataclass
class Settled:
    confirmed: list[Candidate] = field(default_factory=list)
    resolved: list[Candidate] = field(default_factory=list)
    unsettled: list[Candidate] = field(default_factory=list)


def _snapshot(conn: sqlite3.Connection, table: TableMapping, keys: list[tuple]) -> tuple[dict[tuple, dict], set[tuple]]:
    conn.execute("BEGIN")
    try:
        rows = live.read_rows(conn, table, keys)
        pending = live.pending_keys(conn, table.table, len(table.primary_key), live.checkpoint(conn))
    finally:
        conn.execute("COMMIT")
    return rows, pending


def observe(conn: sqlite3.Connection, client: Any, table: TableMapping, candidates: list[Candidate]) -> list[bool]:
    """One sandwich observation per candidate; returns which observations were stable."""
    keys = [c.key for c in candidates if c.key is not None]
    ids = [uuid_mod.UUID(bytes=c.uuid) for c in candidates]
    previous = {c.uuid: c.object_hash for c in candidates}  # from the scan or the last round
    replicated = reads_by_id(client, table.collection)
    rows_a, pending_a = _snapshot(conn, table, keys)
    if replicated:  # every replica's newest version, by id; or the node's own copy where it still differs
        hashes, unindexed, own_copy = fetch_hashes_by_id(client, table, ids)
        hashes.update({u: h for u, h in own_copy.items() if h is not None})
        objects = {u: FetchedObject(u, {"s2wContentHash": h}) for u, h in hashes.items()
                   if u not in unindexed and not (u in own_copy and own_copy[u] is None)}
    else:
        objects = fetch_objects(client, table, ids, full=False)
    rows_b, pending_b = _snapshot(conn, table, keys)
    stable = []
    if not replicated:
        # seen before but not found through the index now: deleted meanwhile, or stored unindexed
        unseen = [u for u in ids if previous[u.bytes] is not None and u not in objects]
        unindexed = stored_but_unindexed(client, table, unseen) if unseen else set()
    for c in candidates:
        u = uuid_mod.UUID(bytes=c.uuid)
        obj = objects.get(u)
        if obj is not None:
            c.object_hash = obj.properties.get("s2wContentHash") or ""
        elif u in unindexed:  # the hash stored (by id), else the one the cursor saw (empty: a foreign object)
            seen = hashes[u] if replicated else (previous[c.uuid] or "").removeprefix(UNINDEXED)
            c.object_hash = UNINDEXED + seen
        else:
            c.object_hash = None
        if c.key is None:
            c.row, c.row_hash = None, None
            stable.append(True)
            continue
        row_a, row_b = rows_a.get(c.key), rows_b.get(c.key)
        hash_a = None if row_a is None else content_hash(table, row_a)
        hash_b = None if row_b is None else content_hash(table, row_b)
        c.row, c.row_hash = row_b, hash_b
        matched = c.object_hash is not None and c.object_hash in (hash_a, hash_b)
        if matched or (c.object_hash is None and hash_a is None and hash_b is None):
            # the object equalled the row at one instant: whatever differed was a change in flight
            c.row_hash = c.object_hash
            stable.append(True)
            continue
        pending = c.key in pending_a or c.key in pending_b
        if pending and c.object_hash != previous[c.uuid]:
            # a hot key: the pipeline applied newer states of it while we watched
            c.row_hash = c.object_hash
            stable.append(True)
            continue
        stable.append(not pending and hash_a == hash_b)
    return stable


def settle(
    conn: sqlite3.Connection,
    client: Any,
    table: TableMapping,
    candidates: list[Candidate],
    *,
    timeout: float,
    confirmations: int = 2,
    find_keys: Callable[[set[bytes]], dict[bytes, tuple]] | None = None,
) -> Settled:
    """Re-observe ``candidates`` until each is resolved, confirmed or the timeout passes.

    ``find_keys`` looks up rows for candidates without a key (extras) before every round:
    a row inserted for that uuid since the last look makes the object legitimate.
    """
    result = Settled()
    deadline = time.monotonic() + timeout
    todo = list(candidates)
    first = True
    while todo:
        remaining = deadline - time.monotonic()
        if remaining <= 0 and not first:
            break
        if live.capture_installed(conn):
            live.wait_caught_up(conn, live.high_water(conn), max(remaining, 0.0))
        first = False
        keyless = {c.uuid for c in todo if c.key is None}
        if keyless and find_keys is not None:
            found = find_keys(keyless)
            for c in todo:
                if c.key is None and c.uuid in found:
                    c.key = found[c.uuid]
                    c.observations.clear()
        again: list[Candidate] = []
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            for c, is_stable in zip(chunk, observe(conn, client, table, chunk)):
                if not is_stable:
                    c.observations.clear()
                    again.append(c)
                elif not c.differs:
                    result.resolved.append(c)
                else:
                    state = (c.row_hash, c.object_hash)
                    if c.observations and c.observations[-1] != state:
                        c.observations.clear()
                    c.observations.append(state)
                    if len(c.observations) >= confirmations:
                        result.confirmed.append(c)
                    else:
                        again.append(c)
        todo = again
        if todo:
            time.sleep(0.05)
    result.unsettled.extend(todo)
    return result


def confirm_without_recheck(candidates: list[Candidate]) -> Settled:
    """The pipeline was idle for the whole scan: the scan itself is a consistent snapshot."""
    return Settled(confirmed=[c for c in candidates if c.differs], resolved=[c for c in candidates if not c.differs])
