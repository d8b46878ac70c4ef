"""Following the app's schema while the relay runs (ADD COLUMN, a table rebuilt, ...).

``capture.detect_drift`` compares each captured table's schema hash and trigger SQL with
what was installed. On drift the follower reloads the mapping, lets the collections gain
the new properties (recording any collection or alias it creates as the tool's, for
rollback), and then ``capture.repair_drift`` regenerates the triggers and re-sends every
key of an affected table through the bulk lane, in one transaction, so nothing changed
while the triggers were blind is lost. A Weaviate that is down or a mapping error is
retried at the next check; the relay keeps relaying meanwhile.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.mapping import Mapping, ensure_collections
from sqlite_to_weaviate.store import registry
from sqlite_to_weaviate.store.txn import immediate

CHECK_INTERVAL = 5.0


class DriftFollower:
    def __init__(self, settings: Any, conn: sqlite3.Connection, on_error: Callable[[str], None]) -> None:
        self.settings = settings
        self.conn = conn
        self.on_error = on_error
        self.repairs = 0
        self.log = get_logger("s2w.relay")
        self._last = time.monotonic()

    def check(self, now: float) -> Mapping | None:
        """The new mapping if the schema drifted and capture was repaired; None otherwise."""
        if now - self._last < CHECK_INTERVAL:
            return None
        self._last = now
        drift = capture.detect_drift(self.conn)
        if not drift:
            return None
        self.log.warning("schema drift detected; re-capturing", drift=[f"{d.table}: {d.kind}" for d in drift])
        try:
            mapping = self.settings.load_mapping(self.conn)
            client = self.settings.connect_weaviate()
            try:
                actions = ensure_collections(client, mapping, on_create=record_collection(self.conn),
                                             on_alias=record_alias(self.conn),
                                             replication_factor=self.settings.replication_factor)
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 - Weaviate down or a mapping error: retried next interval
            self.on_error(f"schema drift not followed yet: {type(exc).__name__}: {exc}")
            return None
        report = capture.repair_drift(self.conn)
        self.repairs += 1
        self.log.info("schema drift repaired", reinstalled=list(report.reinstalled), collections=actions)
        return mapping



def record_collection(conn: sqlite3.Connection) -> Callable[[str], None]:
    """A collection the relay just created is the migration's (rollback may delete it whole)."""
    return lambda name: _record(conn, registry.COLLECTION, name)


def record_alias(conn: sqlite3.Connection) -> Callable[[str], None]:
    """An alias the relay just created (a versioned collection's) is the migration's too."""
    return lambda name: _record(conn, registry.ALIAS, name)


def _record(conn: sqlite3.Connection, kind: str, name: str) -> None:
    with immediate(conn):
        registry.record(conn, kind, name)
