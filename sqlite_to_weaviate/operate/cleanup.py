"""Phase 5: remove capture from the app's database after cutover (Weaviate is kept).

Unlike rollback, this keeps every Weaviate object: the migration succeeded and the app now
reads from Weaviate. Triggers go before the tool tables in one transaction (an outbox
dropped under live triggers would fail every app write). Only what the registry says the
tool created is dropped; the registry itself stays, holding the cutover milestone and the
collections the migration created, so a later ``rollback`` knows that Weaviate became the
system of record (it refuses unless forced) and what it may delete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.capture.install import tool_tables_exist
from sqlite_to_weaviate.store.txn import immediate
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.relay_lock import RelayLock

from sqlite_to_weaviate.store.progress import read_progress

from .phases import Phase, set_phase
from .rollback import sqlite_tool_objects


@dataclass
class UninstallPlan:
    objects: list[str] = field(default_factory=list)
    pending: int = 0

    def lines(self) -> list[str]:
        if not self.objects:
            return ["capture is not installed: nothing to remove"]
        return [f"will drop {', '.join(self.objects)}",
                f"will keep {tool_objects.REGISTRY} (the cutover and the collections the migration created, "
                "for `rollback --force`)",
                f"{self.pending} captured change(s) not yet applied"]


def plan_uninstall(settings: Settings) -> UninstallPlan:
    conn = settings.open_db(readonly=True)
    try:
        plan = UninstallPlan(objects=[n for n in sqlite_tool_objects(conn)
                                      if tool_objects.fold(n) != tool_objects.fold(tool_objects.REGISTRY)])
        if tool_objects.has_table(conn, "_s2w_outbox"):
            p = read_progress(conn)
            plan.pending = p.live.depth + p.bulk.depth + p.owed
        return plan
    finally:
        conn.close()


def uninstall(settings: Settings) -> None:
    """Drop the tool's triggers and tables, keep the registry; refuses while a relay runs (RelayAlreadyRunning)."""
    lock = RelayLock(settings.sqlite_path)
    lock.acquire()
    conn = settings.open_db()
    try:
        if tool_tables_exist(conn):
            set_phase(conn, Phase.CLEANUP)
            with immediate(conn):
                tool_objects.record(conn, tool_objects.MILESTONE, tool_objects.UNINSTALLED)
        capture.uninstall(conn, drop_outbox=True)
    finally:
        conn.close()
        lock.release()
        try:
            lock.path.unlink()
        except OSError:
            pass
