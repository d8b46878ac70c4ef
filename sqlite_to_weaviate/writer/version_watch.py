"""What the relay needs to know about collection versions, in one object it polls.

``embeddings rebuild``, ``switch``, ``rollback`` and ``drop`` change the version record in
SQLite and bump its generation. The relay checks the generation at most four times a second (one
indexed read of ``_s2w_state``); when it changed, the relay reloads its mapping (so every
job dispatched from then on writes every recorded version), makes sure the collections
and aliases exist, and stores the generation it now runs with, which ``rebuild`` waits for
before it starts the backfill that fills a new version.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlite_to_weaviate import collection_versions
from sqlite_to_weaviate.mapping.errors import MappingError
from sqlite_to_weaviate.mapping.versions import generation


def check_recorded(mapping: Any) -> None:
    """A table with embedder vectors must have its versions recorded (by ``init``) before anything is sent."""
    for table in mapping.tables.values():
        for version in table.versions:
            if any(not v.embedder_id for v in version.vectors):
                raise MappingError(
                    f"table {table.table!r} has vectors computed by an embedder, but no collection version is "
                    "recorded for them yet: run `sqlite-to-weaviate init` (it records v1 and creates "
                    f"{table.version_collection(version.name)} and the alias {table.collection})")


CHECK_INTERVAL = 0.25


class VersionWatch:
    """Tells the relay when the version record changed, and records which generation it runs with."""

    def __init__(self, conn: sqlite3.Connection, mapping: Any) -> None:
        check_recorded(mapping)
        self._conn = conn
        self._next_try = 0.0
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

    def failed(self, retry_in: float = 1.0) -> None:
        """Following the change failed (Weaviate down?): try again in ``retry_in`` seconds."""
        self._next_try = time.monotonic() + retry_in

    def loaded(self, mapping: Any, generation: int) -> None:
        """The relay now dispatches with ``mapping``, read at ``generation``."""
        check_recorded(mapping)
        self.generation = generation
        collection_versions.note_relay_generation(self._conn, generation)
