"""Undo a migration: its Weaviate data, its Redis keys, its capture objects — never app data.

Order matters for resumability: Weaviate and Redis are cleaned first, and the SQLite tool
tables (which hold the record of what the migration created) are dropped last, so a
rollback interrupted at any point can simply be run again. The relay lock is held
throughout so no relay can write while we remove things. The app's own tables are never
written: only ``_s2w_*`` triggers and tables are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.capture.txn import immediate
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.mapping.naming import HASH_PROPERTY
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.relay import RelayLock

from .ownership import load_ownership

DELETE_CHUNK = 500


@dataclass
class RollbackReport:
    dry_run: bool = False
    collections_deleted: list[str] = field(default_factory=list)
    objects_deleted: dict[str, int] = field(default_factory=dict)   # pre-existing collection -> our objects
    collections_kept: dict[str, str] = field(default_factory=dict)  # name -> why
    redis_keys_deleted: int = 0
    capture_removed: bool = False
    sqlite_objects: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        out = [f"{verb} collection {n}" for n in self.collections_deleted]
        out += [f"{verb} {n} object(s) written by the migration from pre-existing collection {c}"
                for c, n in self.objects_deleted.items()]
        out += [f"kept collection {c}: {why}" for c, why in self.collections_kept.items()]
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
    queue = RedisKeys(namespace).queue
    job_id = rf"{re.escape(namespace)}-p\d+-[0-9a-f]{{12}}-\d+"
    exact = re.compile(
        rf"^(?:{re.escape(namespace)}:.*|rq:[a-z_]+:{re.escape(queue)}(?::.*)?|rq:[a-z_]+:{job_id}(?::.*)?)$"
    )
    found: set[bytes] = set()
    for pattern in (f"{namespace}:*", f"rq:*:{queue}", f"rq:*:{queue}:*", f"rq:*:{namespace}-p*"):
        for key in client.scan_iter(match=pattern, count=1000):
            if exact.match(key.decode(errors="replace")):
                found.add(key)
    return sorted(found)


def _sqlite_tool_objects(conn: Any) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE name LIKE '\\_s2w\\_%' ESCAPE '\\' AND type IN ('table', 'trigger') "
        "ORDER BY type DESC, name"
    )]


def _delete_our_objects(collection: Any, dry_run: bool) -> int:
    """Objects carrying our content-hash property, in chunks (delete_many caps at 10,000)."""
    from weaviate.classes.query import Filter

    total = 0
    chunk: list[Any] = []

    def flush() -> None:
        nonlocal total
        if not chunk:
            return
        if not dry_run:
            collection.data.delete_many(where=Filter.by_id().contains_any(list(chunk)))
        total += len(chunk)
        chunk.clear()

    for obj in collection.iterator(return_properties=[HASH_PROPERTY]):
        if obj.properties.get(HASH_PROPERTY):
            chunk.append(obj.uuid)
            if len(chunk) >= DELETE_CHUNK:
                flush()
    flush()
    return total


def _tenant_views(collection: Any) -> list[Any]:
    config = collection.config.get()
    if not config.multi_tenancy_config.enabled:
        return [collection]
    return [collection.with_tenant(name) for name in collection.tenants.get()]


def rollback(settings: Settings, *, dry_run: bool = False) -> RollbackReport:
    """Remove what the migration created; ``dry_run`` reports it and changes nothing."""
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
        mapping = settings.load_mapping(conn)
        ownership = load_ownership(conn)
        preexisting = set(ownership["preexisting"]) if ownership else None
        if ownership is None:
            report.notes.append("no record of which collections the migration created: "
                                "only objects it wrote are removed, collections are kept")
        client = settings.connect_weaviate()
        try:
            for table in mapping.collections_in_order()[::-1]:
                name = table.collection
                if not client.collections.exists(name):
                    continue
                if preexisting is not None and name not in preexisting:
                    if not dry_run:
                        client.collections.delete(name)
                    report.collections_deleted.append(name)
                    continue
                collection = client.collections.use(name)
                count = sum(_delete_our_objects(view, dry_run) for view in _tenant_views(collection))
                report.objects_deleted[name] = count
                report.collections_kept[name] = "existed before the migration"
        finally:
            client.close()
        redis_client = settings.connect_redis()
        try:
            keys = namespace_keys(redis_client, settings.namespace)
            if keys and not dry_run:
                for i in range(0, len(keys), 1000):
                    redis_client.delete(*keys[i:i + 1000])
                redis_client.srem("rq:queues", f"rq:queue:{RedisKeys(settings.namespace).queue}")
            report.redis_keys_deleted = len(keys)
        finally:
            redis_client.close()
        report.sqlite_objects = _sqlite_tool_objects(conn)
        if not dry_run:
            capture.uninstall(conn, drop_outbox=True)
            with immediate(conn):
                conn.execute("DROP TABLE IF EXISTS _s2w_dead_letters")
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
