"""Phase 5: remove capture from the app's database after cutover (Weaviate is kept).

Unlike rollback, this keeps every Weaviate object: the migration succeeded and the app now
reads from Weaviate. Triggers go before the tool tables in one transaction (an outbox
dropped under live triggers would fail every app write).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlite_to_weaviate import capture
from sqlite_to_weaviate.capture.install import tool_tables_exist
from sqlite_to_weaviate.capture.txn import immediate
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.relay import RelayLock

from .phases import Phase, set_phase


@dataclass
class UninstallPlan:
    objects: list[str] = field(default_factory=list)
    pending: int = 0

    def lines(self) -> list[str]:
        if not self.objects:
            return ["capture is not installed: nothing to remove"]
        return [f"will drop {', '.join(self.objects)}", f"{self.pending} captured change(s) not yet applied"]


def plan_uninstall(settings: Settings) -> UninstallPlan:
    conn = settings.open_db(readonly=True)
    try:
        plan = UninstallPlan(objects=[r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE '\\_s2w\\_%' ESCAPE '\\' AND type IN ('table', 'trigger') "
            "ORDER BY type DESC, name")])
        if "_s2w_outbox" in plan.objects:
            has_state = "_s2w_state" in plan.objects
            checkpoint = 0
            if has_state:
                row = conn.execute("SELECT value FROM _s2w_state WHERE key='relay.checkpoint'").fetchone()
                checkpoint = int(row[0]) if row else 0
            plan.pending = conn.execute("SELECT count(*) FROM _s2w_outbox WHERE seq > ?", (checkpoint,)).fetchone()[0]
        return plan
    finally:
        conn.close()


def uninstall(settings: Settings) -> None:
    """Drop triggers and tool tables; refuses while a relay runs (RelayAlreadyRunning)."""
    lock = RelayLock(settings.sqlite_path)
    lock.acquire()
    conn = settings.open_db()
    try:
        if tool_tables_exist(conn):
            set_phase(conn, Phase.CLEANUP)
        capture.uninstall(conn, drop_outbox=True)
        with immediate(conn):
            conn.execute("DROP TABLE IF EXISTS _s2w_dead_letters")
    finally:
        conn.close()
        lock.release()
        try:
            lock.path.unlink()
        except OSError:
            pass
