"""``init``: phase 1 of a migration — capture installed and collections created, idempotently.

It also generates the job secret that authenticates jobs between the relay and the workers
(kept in ``_s2w_state`` unless one is given explicitly; see writer/job_secret.py).

Order matters: triggers are installed first (in one SQLite transaction), so that from that
commit on every change is captured; collections are created afterwards, before the relay
sends anything. Running it again is harmless and picks up schema changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.mapping import ensure_collections
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.job_secret import ensure_stored_job_secret


@dataclass
class InitReport:
    captured: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    collection_actions: list[str] = field(default_factory=list)
    resynced: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def initialize(settings: Settings) -> InitReport:
    conn = settings.open_db()
    try:
        mapping = settings.load_mapping(conn)
        install = capture.install(conn, sorted(mapping.tables))
        if settings.job_secret is None:  # an explicit secret is the operator's to keep; never stored
            ensure_stored_job_secret(conn)
        report = InitReport(captured=list(install.installed), skipped=dict(mapping.skipped),
                            resynced=list(install.resynced), warnings=list(install.warnings))
        report.skipped.update(dict(install.skipped))
    finally:
        conn.close()
    client = settings.connect_weaviate()
    try:
        report.collection_actions = ensure_collections(client, mapping)
    finally:
        client.close()
    return report
