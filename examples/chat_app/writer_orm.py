"""The traffic generator's ORM writer: the example app writing through SQLAlchemy 2.x.

``sqlite_to_weaviate.capture.attach`` configures the engine (WAL, ``busy_timeout``,
``BEGIN IMMEDIATE``, foreign keys on) and, when capture is installed in the file, tags
every captured change with context: ``origin`` for the whole engine and the operation
name per session (``set_context``). One Session and one transaction per plan.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, URL, Boolean, create_engine, select
from sqlalchemy.orm import Session

from sqlite_to_weaviate.capture import attach, set_context

from .models import AgentInteraction, Base, Conversation, Message, MultiModalContent
from .timestamps import IsoDateTime
from .traffic_plan import ChangedKeys, Plan, Pools, update_pools

ORIGIN = "examples.chat_app.traffic"


def capture_installed(path: str | Path) -> bool:
    """True when the file has capture's context table (context can only be written then)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_s2w_context'"
        ).fetchone()[0] == 1
    finally:
        conn.close()


def model_values(model: type[Base], row: dict[str, Any]) -> dict[str, Any]:
    """Decode a plan row (values as SQLite stores them) into model attribute values."""
    columns = model.__table__.columns
    values: dict[str, Any] = {}
    for name, value in row.items():
        column_type = columns[name].type
        if isinstance(value, str) and isinstance(column_type, IsoDateTime):
            value = datetime.fromisoformat(value)
        elif isinstance(value, str) and isinstance(column_type, JSON):
            value = json.loads(value)
        elif isinstance(value, int) and isinstance(column_type, Boolean):
            value = bool(value)
        values[name] = value
    return values


class OrmWriter:
    """Applies plans through the ORM; ``apply`` returns changed keys, or None on a miss."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.engine = create_engine(URL.create("sqlite", database=str(path)))
        with_context = capture_installed(path)
        self.with_context = with_context
        self.handle = attach(
            self.engine, foreign_keys=True, busy_timeout_ms=busy_timeout_ms,
            context=(lambda: {"origin": ORIGIN}) if with_context else None,
        )

    def close(self) -> None:
        self.handle.detach()
        self.engine.dispose()

    def apply(self, plan: Plan, pools: Pools) -> ChangedKeys | None:
        with Session(self.engine) as session, session.begin():
            if self.with_context:
                set_context(session, op=plan.op)
            changed = self._perform(session, plan)
        update_pools(plan, changed, pools)
        return changed

    def _perform(self, session: Session, plan: Plan) -> ChangedKeys | None:
        v = plan.values
        if plan.op == "insert_conversation":
            conversation = Conversation(**model_values(Conversation, v["conversation"]))
            conversation.messages = [Message(**model_values(Message, m)) for m in v["messages"]]
            session.add(conversation)
            return [("conversations", (conversation.id,))] + [("messages", (m["id"],)) for m in v["messages"]]
        if plan.op == "insert_message":
            if session.get(Conversation, v["message"]["conversation_id"]) is None:
                return None
            session.add(Message(**model_values(Message, v["message"])))
            return [("messages", (v["message"]["id"],))]
        if plan.op == "insert_interaction":
            interaction = AgentInteraction(**model_values(AgentInteraction, v["interaction"]))
            session.add(interaction)
            session.flush()  # the rowid is assigned by SQLite
            return [("agent_interactions", (interaction.id,))]
        if plan.op == "edit_message":
            message = session.get(Message, v["id"])
            if message is None:
                return None
            message.content = v["content"]
            return [("messages", (v["id"],))]
        if plan.op == "toggle_conversation":
            conversation = session.get(Conversation, v["id"])
            if conversation is None:
                return None
            conversation.is_active = not conversation.is_active
            conversation.updated_at = datetime.fromisoformat(v["updated_at"])
            return [("conversations", (v["id"],))]
        if plan.op == "delete_message":
            message = session.get(Message, v["id"])
            if message is None:
                return None
            session.delete(message)
            return [("messages", (v["id"],))]
        if plan.op == "delete_conversation":
            conversation = session.get(Conversation, v["id"])
            if conversation is None:
                return None
            cascaded: ChangedKeys = [("messages", (i,)) for i in session.scalars(
                select(Message.id).where(Message.conversation_id == v["id"]))]
            for model, table in ((AgentInteraction, "agent_interactions"), (MultiModalContent, "multimodal_content")):
                cascaded += [(table, (i,)) for i in session.scalars(
                    select(model.id).where(model.conversation_id == v["id"]))]
            session.delete(conversation)  # the database cascades (passive_deletes)
            return [("conversations", (v["id"],))] + cascaded
        if plan.op == "change_message_id":
            message = session.get(Message, v["id"])
            if message is None:
                return None
            message.id = v["new_id"]  # SQLAlchemy issues UPDATE ... SET id = new WHERE id = old
            return [("messages", (v["id"],)), ("messages", (v["new_id"],))]
        raise ValueError(f"unknown traffic operation {plan.op!r}")
