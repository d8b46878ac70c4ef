"""The traffic generator's raw ``sqlite3`` writer: what a non-ORM process does to the file.

Each plan is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction (a deferred transaction
would fail at once with "database is locked" when it upgrades to a write lock) on a
connection with ``busy_timeout``, foreign keys on (so deleting a conversation cascades
in the database) and ``recursive_triggers`` on (as capture recommends). No context is
attached: capture's triggers record these changes all by themselves.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .traffic_plan import ChangedKeys, Plan, Pools, update_pools


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    columns = list(row)
    cursor = conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [row[c] for c in columns],
    )
    return cursor.lastrowid or 0


def dependents(conn: sqlite3.Connection, conversation_id: str) -> ChangedKeys:
    """Keys of rows a conversation delete changes by cascade (deleted or set NULL)."""
    keys: ChangedKeys = []
    for table in ("messages", "agent_interactions", "multimodal_content"):
        keys += [(table, (r[0],)) for r in conn.execute(f"SELECT id FROM {table} WHERE conversation_id = ?",
                                                        (conversation_id,))]
    return keys


class RawWriter:
    """Applies plans with plain sqlite3; ``apply`` returns changed keys, or None on a miss."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA recursive_triggers=ON")

    def close(self) -> None:
        self.conn.close()

    def apply(self, plan: Plan, pools: Pools) -> ChangedKeys | None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            changed = self._perform(plan)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        update_pools(plan, changed, pools)
        return changed

    def _perform(self, plan: Plan) -> ChangedKeys | None:
        conn, v = self.conn, plan.values
        if plan.op == "insert_conversation":
            _insert(conn, "conversations", v["conversation"])
            for message in v["messages"]:
                _insert(conn, "messages", message)
            return [("conversations", (v["conversation"]["id"],))] + [("messages", (m["id"],)) for m in v["messages"]]
        if plan.op == "insert_message":
            if not conn.execute("SELECT 1 FROM conversations WHERE id = ?", (v["message"]["conversation_id"],)).fetchone():
                return None
            _insert(conn, "messages", v["message"])
            return [("messages", (v["message"]["id"],))]
        if plan.op == "insert_interaction":
            rowid = _insert(conn, "agent_interactions", v["interaction"])
            return [("agent_interactions", (rowid,))]
        if plan.op == "edit_message":
            n = conn.execute("UPDATE messages SET content = ? WHERE id = ?", (v["content"], v["id"])).rowcount
            return [("messages", (v["id"],))] if n else None
        if plan.op == "toggle_conversation":
            n = conn.execute("UPDATE conversations SET is_active = 1 - is_active, updated_at = ? WHERE id = ?",
                             (v["updated_at"], v["id"])).rowcount
            return [("conversations", (v["id"],))] if n else None
        if plan.op == "delete_message":
            n = conn.execute("DELETE FROM messages WHERE id = ?", (v["id"],)).rowcount
            return [("messages", (v["id"],))] if n else None
        if plan.op == "delete_conversation":
            cascaded = dependents(conn, v["id"])
            n = conn.execute("DELETE FROM conversations WHERE id = ?", (v["id"],)).rowcount
            return [("conversations", (v["id"],))] + cascaded if n else None
        if plan.op == "change_message_id":
            n = conn.execute("UPDATE messages SET id = ? WHERE id = ?", (v["new_id"], v["id"])).rowcount
            return [("messages", (v["id"],)), ("messages", (v["new_id"],))] if n else None
        raise ValueError(f"unknown traffic operation {plan.op!r}")

