"""Following collection versions while the relay runs (embeddings rebuild, switch, drop).

``embeddings rebuild``, ``switch``, ``rollback`` and ``drop`` change the version record in
SQLite and bump its generation. The relay checks the generation at most four times a second (one
indexed read of ``_s2w_state``); when it changed, the relay reloads its mapping (so every
job dispatched from then on writes every recorded version), makes sure the collections
and aliases exist (recording those it creates as the tool's, for rollback), and stores the
generation it now runs with, which ``rebuild`` waits for before it starts the backfill
that fills a new version. A Weaviate that is down is retried a second later; the relay
keeps relaying with the record it has meanwhile.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlite_to_weaviate import collection_versions
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.mapping import Mapping, ensure_collections
from sqlite_to_weaviate.mapping.errors import MappingError
from sqlite_to_weaviate.mapping.versions import generation
from sqlite_to_weaviate.writer.drift_follower import record_alias, record_collection

CHECK_INTERVAL = 0.25
RETRY_S = 1.0


def check_recorded(mapping: Any) -> None:
    """A table with embedder vectors must have its versions recorded (by ``init``) before anything is sent."""
    for table in mapping.tables.values():
        for version in table.versions:
            if any(not v.embedder_id for v in version.vectors):
                raise MappingError(
                    f"table {table.table!r} has vectors computed by an embedder, but no collection version is "
                    "recorded for them yet: run `sqlite-to-weaviate init` (it records v1 and creates "
                    f"{table.version_collection(version.name)} and the alias {table.collection})")


class VersionWatch:
    """Tells the relay when the version record changed, follows it, and records which generation it runs with."""

    def __init__(self, settings: Any, conn: sqlite3.Connection, mapping: Any,
                 on_error: Callable[[str], None]) -> None:
        check_recorded(mapping)
        self._settings = settings
        self._conn = conn
        self._on_error = on_error
        self._next_try = 0.0
        self.log = get_logger("s2w.relay")
        self.generation = generation(conn)
        if mapping.uses_embedders:
            collection_versions.note_relay_generation(conn, self.generation)

    def changed(self) -> bool:
        """Checked at most every CHECK_INTERVAL seconds (the relay calls it on every pass)."""
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + CHECK_INTERVAL
        return generation(self._conn) != self.generation

    def check(self) -> Mapping | None:
        """The reloaded mapping if the version record changed and was followed; None otherwise."""
        if not self.changed():
            return None
        target = generation(self._conn)
        try:
            mapping = self._settings.load_mapping(self._conn)
            client = self._settings.connect_weaviate()
            try:
                actions = ensure_collections(client, mapping, on_create=record_collection(self._conn),
                                             on_alias=record_alias(self._conn),
                                             replication_factor=self._settings.replication_factor)
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 - Weaviate down or a mapping error: retried a second later
            self._on_error(f"collection versions not followed yet: {type(exc).__name__}: {exc}")
            self._next_try = time.monotonic() + RETRY_S
            return None
        check_recorded(mapping)
        self.generation = target
        collection_versions.note_relay_generation(self._conn, target)
        self.log.info("collection versions reloaded", generation=target, collections=actions)
        return mapping
