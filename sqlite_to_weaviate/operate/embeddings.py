"""Changing a table's embedding model without downtime: rebuild, switch, rollback, drop, status, prune.

The sequence (docs/embeddings.md has the operator's version):

1. Edit the mapping: define the new model as a *new* embedder and point the vector at it.
   The live version keeps its old embedder meanwhile (the mapping must keep defining it).
2. ``embeddings rebuild``: records a ``building`` version with the mapping's vectors,
   creates its collection, waits until the running relay writes every change to both
   versions, then re-runs the backfill of the table (history into the new version; the
   old one gets idempotent re-writes whose vectors come from its objects, no model call).
3. ``embeddings switch``: verifies the new version (every row by content hash, and
   ``--search``), records it live and moves the alias. Readers see the new model at once.
   The previous version becomes ``standby`` and is still written, so
4. ``embeddings rollback`` is instant: the alias goes back, the states swap.
5. ``embeddings drop --version vN``: stop writing a standby version and delete its
   collection (never the live one, never one an alias points at).

The version record in SQLite is changed first, then Weaviate: if anything stops in
between, ``init`` (or the relay, on its next reload) moves the alias to the recorded live
version.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate import collection_versions
from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.mapping import ensure_collections
from sqlite_to_weaviate.mapping.model import Mapping, TableMapping
from sqlite_to_weaviate.mapping.versions import RELAY_GENERATION_KEY, drift, generation

RELAY_CONFIRM_TIMEOUT_S = 60.0


class VersionError(S2WError):
    """A version command cannot do what was asked; the message says why and what to do."""


def _mapping(settings: Any, conn: Any) -> Mapping:
    return settings.load_mapping(conn)


def _versioned(mapping: Mapping, table: str | None) -> TableMapping:
    candidates = [t for t in mapping.tables.values() if t.versioned]
    if table is not None:
        found = mapping.table(table)
        if not found.versioned:
            raise VersionError(f"table {table!r} has no vectors computed by an embedder (no collection versions)")
        return found
    if len(candidates) != 1:
        names = ", ".join(sorted(t.table for t in candidates)) or "none"
        raise VersionError(f"name the table with --table (tables with collection versions: {names})")
    return candidates[0]


def _record_created(conn: Any, kind: str, name: str) -> None:
    with immediate(conn):
        tool_objects.record(conn, kind, name)


def relay_running(settings: Any) -> bool:
    """True while a relay serves this database (probed with its own lock, see preflight)."""
    from sqlite_to_weaviate.writer.relay_lock import RelayAlreadyRunning

    from .preflight import ensure_no_relay

    try:
        ensure_no_relay(settings, hint="")
    except RelayAlreadyRunning:
        return True
    return False


def wait_for_relay(settings: Any, conn: Any, target: int, timeout: float = RELAY_CONFIRM_TIMEOUT_S,
                   then: str = "run `embeddings rebuild --resume` once the relay is healthy") -> bool:
    """True once a running relay dispatches with generation ``target`` (False at once when no relay
    runs: the next one reads the record when it starts). ``then`` tells the operator what to do
    if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while relay_running(settings):
        if generation(conn, RELAY_GENERATION_KEY) >= target:
            return True
        if time.monotonic() > deadline:
            raise VersionError(
                f"the running relay has not loaded the new collection versions within {timeout:.0f}s (it checks "
                "four times a second): see `sqlite-to-weaviate status` for its last error; the version change is "
                f"recorded, so {then}")
        time.sleep(0.2)
    return False


def wait_for_older_jobs(settings: Any, since: float, timeout: float | None = None) -> None:
    """Wait until every job the relay dispatched before ``since`` (unix time) has finished.

    Read from the relay's published snapshot (dispatch time = published at - age); a job
    that outlives ``timeout`` (default: the job timeout) is reported, not waited for.
    """
    import json

    from sqlite_to_weaviate.writer.redis_keys import RedisKeys

    deadline = time.monotonic() + (settings.job_timeout if timeout is None else timeout)
    client = settings.connect_redis()
    try:
        while True:
            raw = client.get(RedisKeys(settings.namespace).relay_status)
            try:
                snapshot = json.loads(raw) if raw else {}
                older = [job for job in (snapshot.get("inflight") or {}).values()
                         if float(snapshot["at"]) - float(job["age_s"]) < since]
            except (ValueError, KeyError, TypeError):
                return  # nothing readable to wait for (Redis is untrusted: never block on it)
            if not older:
                return
            if time.monotonic() > deadline:
                raise VersionError(f"{len(older)} job(s) dispatched before the change are still running after "
                                   f"{settings.job_timeout}s; run the command again once they finish")
            time.sleep(0.25)
    finally:
        client.close()


@dataclass
class RebuildReport:
    table: str
    version: str
    collection: str
    vectors: dict[str, str]               # vector -> embedder id
    relay_confirmed: bool = False
    rows_enqueued: int = 0
    applied: bool | None = None
    actions: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"table {self.table}: building {self.version} in {self.collection} ("
               + ", ".join(f"{n}: {i}" for n, i in self.vectors.items()) + ")"]
        out += [f"  {a}" for a in self.actions]
        out.append("  the running relay writes every change to both versions" if self.relay_confirmed else
                   "  no relay is running: the next one writes both versions")
        out.append(f"  backfill enqueued {self.rows_enqueued} row(s)"
                   + ("" if self.applied is None else "; all applied" if self.applied else "; NOT all applied yet"))
        out.append(f"  next: sqlite-to-weaviate embeddings switch --table {self.table} --to {self.version}")
        return out


def rebuild(settings: Any, *, table: str | None = None, to: str | None = None, force: bool = False,
            resume: bool = False, wait: bool = True, timeout: float | None = None) -> RebuildReport:
    """Build a new collection version of ``table`` with the mapping's vectors (see the module docstring)."""
    from sqlite_to_weaviate.backfill import BackfillOptions, backfill

    conn = settings.open_db()
    try:
        mapping = _mapping(settings, conn)
        target = _versioned(mapping, table)
        building = [v for v in target.versions if v.state == "building"]
        if resume:
            if not building:
                raise VersionError(f"table {target.table!r} has no version being built to resume")
            version = building[-1]
        else:
            if building:
                raise VersionError(f"table {target.table!r} is already building {building[-1].name}: switch to it, "
                                   f"resume it (--resume) or drop it first")
            if drift(target) is None and not force:
                raise VersionError(f"nothing to rebuild: the live version of table {target.table!r} already has the "
                                   "vectors the mapping asks for (change the embedder in the mapping, or pass --force)")
            version = collection_versions.add_version(conn, target, mapping.embedders, to)
        mapping = _mapping(settings, conn)
        target = mapping.table(target.table)
        report = RebuildReport(target.table, version.name, target.version_collection(version.name),
                               {v.name: v.embedder_id for v in version.vectors})
        client = settings.connect_weaviate()
        try:
            report.actions = ensure_collections(
                client, mapping, on_create=lambda n: _record_created(conn, tool_objects.COLLECTION, n),
                on_alias=lambda n: _record_created(conn, tool_objects.ALIAS, n),
                replication_factor=settings.replication_factor)
        finally:
            client.close()
        report.relay_confirmed = wait_for_relay(settings, conn, generation(conn))
    finally:
        conn.close()
    result = backfill(settings, BackfillOptions(tables=[report.table], restart=True, wait_applied=wait,
                                                wait_timeout=timeout))
    report.rows_enqueued = result.rows_enqueued
    report.applied = result.applied if wait else None
    return report


@dataclass
class SwitchReport:
    table: str
    alias: str
    previous: str
    current: str
    verified: Any = None       # the VerifyReport of the new version (None with --no-verify)
    switched: bool = False

    def lines(self) -> list[str]:
        out = []
        if self.verified is not None:
            out.append(self.verified.render())
        if self.switched:
            out.append(f"alias {self.alias} now points at {self.current} (was {self.previous}); {self.previous} is "
                       "standby and still written: `sqlite-to-weaviate embeddings rollback` goes back instantly")
        else:
            out.append(f"NOT switched: {self.current} does not verify clean; the alias still points at {self.previous}")
        return out


def _move_alias(settings: Any, alias: str, collection: str) -> None:
    client = settings.connect_weaviate()
    try:
        current = client.alias.get(alias_name=alias)
        if current is None:
            client.alias.create(alias_name=alias, target_collection=collection)
        elif current.collection != collection:
            client.alias.update(alias_name=alias, new_target_collection=collection)
    finally:
        client.close()


def _make_live(settings: Any, conn: Any, target: Any, to: str, previous: str) -> str:
    """Record ``to`` as live (``previous`` standby) and point the alias at it; the physical name.

    The running relay also points the alias at the recorded live version whenever it reloads the
    record, and a reload that read the record just before this change moves the alias back to
    ``previous`` after we moved it. So the alias is moved, then the relay waited for until it runs
    with this change (from then on it moves the alias here itself, never back), then set once more.
    """
    changed = collection_versions.set_states(conn, target.table, {to: "live", previous: "standby"})
    physical = target.version_collection(to)
    _move_alias(settings, target.collection, physical)
    if wait_for_relay(settings, conn, changed,
                      then=f"the alias {target.collection} follows it once the relay is healthy"):
        _move_alias(settings, target.collection, physical)
    return physical


def switch(settings: Any, *, table: str | None = None, to: str | None = None, verify_first: bool = True,
           sample: int = 100, search_sample: int = 100, min_recall: float = 0.9) -> SwitchReport:
    """Verify version ``to`` (default: the one being built) and make it live."""
    from sqlite_to_weaviate.verify import verify
    from sqlite_to_weaviate.verify.search import SearchOptions

    conn = settings.open_db()
    try:
        mapping = _mapping(settings, conn)
        target = _versioned(mapping, table)
        live = target.live_version
        assert live is not None
        if to is None:
            building = [v.name for v in target.versions if v.state == "building"]
            if len(building) != 1:
                raise VersionError(f"name the version with --to (versions of {target.table}: "
                                   f"{[(v.name, v.state) for v in target.versions]})")
            to = building[0]
        version = target.version(to)
        if version.state == "live":
            raise VersionError(f"{to} is already the live version of table {target.table!r}")
        physical = target.version_collection(to)
        report = SwitchReport(target.table, target.collection, target.version_collection(live.name), physical)
        if verify_first:
            view = dataclasses.replace(mapping, tables=dict(mapping.tables, **{target.table: target.for_version(to)}))
            report.verified = verify(settings, tables=[target.table], mapping=view, sample=sample,
                                     search=SearchOptions(sample=search_sample, min_recall=min_recall))
            if report.verified.exit_code() != 0:
                return report
        _make_live(settings, conn, target, to, live.name)
    finally:
        conn.close()
    report.switched = True
    return report


def rollback(settings: Any, *, table: str | None = None, to: str | None = None) -> SwitchReport:
    """Point the alias back at a standby version (default: the most recent one); no verification needed:
    it was live before and has been written all along."""
    conn = settings.open_db()
    try:
        target = _versioned(_mapping(settings, conn), table)
        live = target.live_version
        assert live is not None
        standby = [v.name for v in target.versions if v.state == "standby"]
        if to is None:
            if not standby:
                raise VersionError(f"table {target.table!r} has no standby version to roll back to")
            to = standby[-1]
        elif to not in standby:
            raise VersionError(f"{to} is not a standby version of table {target.table!r} (standby: {standby})")
        physical = _make_live(settings, conn, target, to, live.name)
    finally:
        conn.close()
    return SwitchReport(target.table, target.collection, target.version_collection(live.name), physical,
                        switched=True)


def drop(settings: Any, *, version: str, table: str | None = None) -> list[str]:
    """Stop writing a version that is not live and delete its collection (if the tool created it)."""
    conn = settings.open_db()
    try:
        target = _versioned(_mapping(settings, conn), table)
        found = target.version(version)
        if found.state == "live":
            raise VersionError(f"{version} is the live version of table {target.table!r}: switch to another first")
        physical = target.version_collection(version)
        client = settings.connect_weaviate()
        try:
            pointing = [a for a, r in client.alias.list_all(collection=physical).items()] \
                if client.collections.exists(physical) else []
            if pointing:
                raise VersionError(f"alias(es) {pointing} point at {physical}: it is not dropped (the record says "
                                   "it is not live; run `sqlite-to-weaviate init` to move the alias back)")
            changed = collection_versions.set_states(conn, target.table, {version: None})
            if wait_for_relay(settings, conn, changed):
                wait_for_older_jobs(settings, time.time())  # jobs built before may still write to it
            lines = [f"table {target.table}: {version} is no longer written"]
            if client.collections.exists(physical):
                if tool_objects.is_registered(conn, tool_objects.COLLECTION, physical):
                    client.collections.delete(physical)
                    with immediate(conn):
                        tool_objects.forget(conn, tool_objects.COLLECTION, physical)
                    lines.append(f"deleted collection {physical}")
                else:
                    lines.append(f"kept collection {physical}: sqlite-to-weaviate did not create it")
        finally:
            client.close()
        return lines
    finally:
        conn.close()


__all__ = ["VersionError", "drop", "rebuild", "rollback", "switch"]
