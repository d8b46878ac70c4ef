"""Undo a migration: its Weaviate data, its Redis keys, its capture objects — never app data.

What may be deleted is decided by evidence, never by a name prefix
(:mod:`.ownership`): a collection the registry says the tool created is deleted whole;
in any other mapped collection only the objects carrying the tool's content hash are
deleted, and the operator's own objects stay. In SQLite only the triggers and tables the
registry lists are dropped, so an app trigger or table whose name starts with ``_s2w_``
survives.

After ``uninstall`` (phase 5) Weaviate is the system of record: objects may have been
edited there since cutover, and rollback would delete them with everything else, so it
refuses unless forced (:class:`RollbackRefused`, exit code 3).

Order matters for resumability: Weaviate and Redis are cleaned first, and the SQLite tool
tables (which hold the record of what the migration created) are dropped last, so a
rollback interrupted at any point can simply be run again. The relay lock is held
throughout so no relay can write while we remove things. The app's own tables are never
written.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.mapping.naming import HASH_PROPERTY
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.relay_lock import RelayLock

from .ownership import DELETE_IF_ONLY_OURS, DELETE_OUR_OBJECTS, DELETE_WHOLE, plan_collections
from .phases import Phase, get_phase, uninstalled_at

DELETE_CHUNK = 500


class RollbackRefused(S2WError):
    """Rollback would destroy data that only Weaviate holds now; ``--force`` overrides."""


@dataclass
class RollbackReport:
    dry_run: bool = False
    aliases_deleted: list[str] = field(default_factory=list)        # aliases the tool created (embedder vectors)
    collections_deleted: list[str] = field(default_factory=list)
    objects_deleted: dict[str, int] = field(default_factory=dict)   # collection not created by us -> our objects
    foreign_kept: dict[str, int] = field(default_factory=dict)      # collection -> objects without our hash, kept
    collections_kept: dict[str, str] = field(default_factory=dict)  # name -> why
    redis_keys_deleted: int = 0
    capture_removed: bool = False
    sqlite_objects: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        out = [f"{verb} alias {n}" for n in self.aliases_deleted]
        out += [f"{verb} collection {n}" for n in self.collections_deleted]
        out += [f"{verb} {n} object(s) written by the migration from pre-existing collection {c}"
                for c, n in self.objects_deleted.items()]
        out += [f"kept collection {c}: {why}"
                + (f" ({self.foreign_kept[c]} object(s) not written by the migration)" if self.foreign_kept.get(c) else "")
                for c, why in self.collections_kept.items()]
        out.append(f"{verb} {self.redis_keys_deleted} Redis key(s)")
        if self.sqlite_objects:
            out.append(f"{'would drop' if self.dry_run else 'dropped'} from SQLite: {', '.join(self.sqlite_objects)}")
        out += self.notes
        return out


def namespace_keys(client: Any, namespace: str) -> list[bytes]:
    """Every Redis key of one pipeline namespace (its own keys, its RQ queue, registries and jobs).

    Namespaces may contain ``-``, so job ids (``<namespace>-p<partition>-<run id>-<counter>``,
    writer/relay.py) are matched whole: namespace ``app`` must not take the jobs of
    ``app-p2`` (``app-p2-p3-...``), whose text after ``app-p2-`` is not a 12-hex-digit run id.
    """
    queues = RedisKeys(namespace).queues()
    job_id = rf"{re.escape(namespace)}-p\d+-[0-9a-f]{{12}}-\d+"
    queue_names = "|".join(re.escape(q) for q in queues)
    exact = re.compile(
        rf"^(?:{re.escape(namespace)}:.*|rq:[a-z_]+:(?:{queue_names})(?::.*)?|rq:[a-z_]+:{job_id}(?::.*)?)$"
    )
    found: set[bytes] = set()
    patterns = [f"{namespace}:*", f"rq:*:{namespace}-p*"] + [p for q in queues for p in (f"rq:*:{q}", f"rq:*:{q}:*")]
    for pattern in patterns:
        for key in client.scan_iter(match=pattern, count=1000):
            if exact.match(key.decode(errors="replace")):
                found.add(key)
    return sorted(found)


def sqlite_tool_objects(conn: Any) -> list[str]:
    """The triggers, then the tables, the registry says the tool created (the app's own are never listed)."""
    triggers = sorted(tool_objects.registered(conn, tool_objects.TRIGGER).values())
    tables = sorted(n for n in tool_objects.registered(conn, tool_objects.TABLE).values()
                    if tool_objects.has_table(conn, n))
    return triggers + tables


def _scan(collection: Any, *, delete: bool, stop_at_foreign: bool = False) -> tuple[int, int]:
    """(objects carrying our content hash, objects without it); deletes ours in chunks when ``delete``.

    Deleted by id where the index misses them (``sqlite_to_weaviate.weaviate_deletes``).
    """
    from sqlite_to_weaviate.weaviate_deletes import delete_objects

    ours, foreign = 0, 0
    chunk: list[Any] = []

    def flush() -> None:
        if chunk and delete:
            delete_objects(collection, [str(u) for u in chunk])
        chunk.clear()

    for obj in collection.iterator(return_properties=[HASH_PROPERTY]):
        if obj.properties.get(HASH_PROPERTY):
            ours += 1
            chunk.append(obj.uuid)
            if len(chunk) >= DELETE_CHUNK:
                flush()
        else:
            foreign += 1
            if stop_at_foreign:
                break
    flush()
    return ours, foreign


def _tenant_views(collection: Any) -> list[Any]:
    config = collection.config.get()
    if not config.multi_tenancy_config.enabled:
        return [collection]
    return [collection.with_tenant(name) for name in collection.tenants.get()]


def check_not_cut_over(conn: Any, *, force: bool) -> None:
    """Refuse (RollbackRefused) after phase 5 unless ``force``: Weaviate may hold edits SQLite never saw."""
    if force:
        return
    at = uninstalled_at(conn)
    if at is None and get_phase(conn) < Phase.CLEANUP:
        return
    when = f" on {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(at))}" if at is not None else ""
    raise RollbackRefused(
        f"capture was uninstalled after cutover (phase 5){when}: Weaviate is the system of record now and may hold "
        "changes made after cutover, which a rollback would delete with every migrated object; "
        "take a Weaviate backup first and pass --force if you really want to roll back"
    )


def rollback(settings: Settings, *, dry_run: bool = False, force: bool = False) -> RollbackReport:
    """Remove what the migration created; ``dry_run`` reports it and changes nothing.

    Raises :class:`RollbackRefused` after phase 5 (``uninstall``) unless ``force``.
    """
    log = get_logger("s2w.rollback")
    report = RollbackReport(dry_run=dry_run)
    lock = RelayLock(settings.sqlite_path)
    if not dry_run:
        lock.acquire()  # RelayAlreadyRunning: stop the relay / sidecar first (checked before any write)
    try:
        conn = settings.open_db(readonly=dry_run)
    except BaseException:
        lock.release()
        raise
    try:
        check_not_cut_over(conn, force=force)
        mapping = settings.load_mapping(conn)
        # a table with embedder vectors is an alias over versioned collections: plan the collections,
        # and delete the aliases the tool created first (deleting a collection leaves its alias dangling,
        # and Weaviate's collections.delete(alias) silently deletes nothing)
        plans = plan_collections(conn, [n for t in mapping.collections_in_order() for n in t.write_collections])
        client = settings.connect_weaviate()
        try:
            for alias in sorted(tool_objects.registered(conn, tool_objects.ALIAS).values()):
                if client.alias.get(alias_name=alias) is None:
                    continue
                if not dry_run:
                    client.alias.delete(alias_name=alias)
                report.aliases_deleted.append(alias)
            for plan in plans:
                if not client.collections.exists(plan.name):
                    continue
                collection = client.collections.use(plan.name)
                views = _tenant_views(collection)
                action = plan.action
                if action == DELETE_IF_ONLY_OURS:
                    foreign = sum(_scan(view, delete=False, stop_at_foreign=True)[1] for view in views)
                    action = DELETE_WHOLE if not foreign else DELETE_OUR_OBJECTS
                    if foreign:
                        plan = dataclasses.replace(plan, action=action,
                                                   reason="it holds objects not written by the migration")
                if action == DELETE_WHOLE:
                    if not dry_run:
                        client.collections.delete(plan.name)
                    report.collections_deleted.append(plan.name)
                    continue
                counts = [_scan(view, delete=not dry_run) for view in views]
                report.objects_deleted[plan.name] = sum(c[0] for c in counts)
                report.foreign_kept[plan.name] = sum(c[1] for c in counts)
                report.collections_kept[plan.name] = plan.reason
        finally:
            client.close()
        redis_client = settings.connect_redis()
        try:
            keys = namespace_keys(redis_client, settings.namespace)
            if keys and not dry_run:
                for i in range(0, len(keys), 1000):
                    redis_client.delete(*keys[i:i + 1000])
                redis_client.srem("rq:queues", *[f"rq:queue:{q}" for q in RedisKeys(settings.namespace).queues()])
            report.redis_keys_deleted = len(keys)
        finally:
            redis_client.close()
        report.sqlite_objects = sqlite_tool_objects(conn)
        if not dry_run:
            capture.uninstall(conn, drop_outbox=True)
            with immediate(conn):
                tool_objects.drop_registry(conn, only_if_empty=False)
            report.capture_removed = True
    finally:
        conn.close()
        if not dry_run:
            lock.release()
            try:
                lock.path.unlink()
            except OSError:
                pass
    log.info("rollback dry run" if dry_run else "rolled back", collections=report.collections_deleted,
             objects=report.objects_deleted, redis_keys=report.redis_keys_deleted)
    return report
