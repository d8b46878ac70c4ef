"""``init``: phase 1 of a migration — capture installed and collections created, idempotently.

Order matters: the database is checked first (``PRAGMA quick_check`` on a read-only
connection, so a damaged file is refused before anything is written to it) and Weaviate
is connected to (a wrong URL or API key is refused before capture exists); triggers are
installed next (in one SQLite transaction), so that from that commit on every change is
captured; collections are created afterwards, before the relay sends anything. Each
collection this run creates is recorded in the registry right after Weaviate accepted
the create call, so ``rollback`` can tell it from a collection that was already there.
Running it again is harmless and picks up schema changes. A replication factor the
cluster cannot hold is refused right after connecting, before anything is written.

It also generates the job secret that authenticates jobs between the relay and the workers
(kept in ``_s2w_state`` unless one is given explicitly; see writer/job_secret.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.collection_versions import record_versions
from sqlite_to_weaviate.embed.cache import cache_collection_name, ensure_cache_collection
from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.mapping import ensure_collections
from sqlite_to_weaviate.mapping.collections import (
    check_replication_factor, cluster_size, replication_actions, replication_config,
)
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.sqlite_db import check_integrity
from sqlite_to_weaviate.writer.job_secret import ensure_stored_job_secret


@dataclass
class InitReport:
    captured: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    collection_actions: list[str] = field(default_factory=list)
    resynced: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def initialize(settings: Settings) -> InitReport:
    check_integrity(settings.database)
    client = settings.connect_weaviate()  # a wrong URL or API key fails here, before capture is installed
    try:
        nodes = cluster_size(client)
        check_replication_factor(settings.replication_factor, nodes, f" at {settings.weaviate.host}")
        conn = settings.open_db()
        try:
            mapping = settings.load_mapping(conn)
            install = capture.install(conn, sorted(mapping.tables))
            if settings.job_secret is None:  # an explicit secret is the operator's to keep; never stored
                ensure_stored_job_secret(conn)
            report = InitReport(captured=list(install.installed), skipped=dict(mapping.skipped),
                                resynced=list(install.resynced), warnings=list(install.warnings))
            report.skipped.update(dict(install.skipped))
            if nodes > 1 and settings.replication_factor == 1:
                report.warnings.append(
                    f"the Weaviate cluster has {nodes} nodes and replication_factor is 1: each object has one copy, "
                    "so a node that is down takes its share of the objects with it; set --replication-factor "
                    "(docs/scale-out.md)")

            def record_created(name: str, kind: str = tool_objects.COLLECTION) -> None:
                with immediate(conn):
                    tool_objects.record(conn, kind, name)

            mapping, recorded, drift = record_versions(conn, settings, mapping)  # embedder vectors
            report.warnings.extend(drift)
            report.collection_actions = recorded + ensure_collections(
                client, mapping, on_create=record_created,
                on_alias=lambda name: record_created(name, tool_objects.ALIAS),
                replication_factor=settings.replication_factor)
            created = ensure_cache_collection(client, mapping, settings.collection_prefix, on_create=record_created,
                                              replication=replication_config(settings.replication_factor))
            cache = cache_collection_name(mapping, settings.collection_prefix)
            if cache is not None and not created:  # an existing cache is checked like the data collections
                created = replication_actions(client, cache, settings.replication_factor)
            report.collection_actions += created
        finally:
            conn.close()
    finally:
        client.close()
    return report
