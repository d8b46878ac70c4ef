"""What the traffic generator does next: a weighted choice of operation and its values.

Planning is separate from writing so the ORM and the raw-sqlite3 writers perform exactly
the same workload for the same seed. A plan holds values encoded as SQLite stores them
(ISO text, JSON text); the ORM writer decodes them for its models.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import content
from .seed import agent_interaction_row, conversation_row, message_row

# (operation, weight): mostly new messages and edits, some deletes, a few key changes.
OPERATIONS: tuple[tuple[str, int], ...] = (
    ("insert_message", 38),
    ("insert_conversation", 8),
    ("insert_interaction", 4),
    ("edit_message", 20),
    ("toggle_conversation", 10),
    ("delete_message", 10),
    ("delete_conversation", 4),
    ("change_message_id", 6),
)
ChangedKeys = list[tuple[str, tuple[Any, ...]]]
"""(table, primary-key values) of every row a transaction changed."""

MIN_CONVERSATIONS = 5
"""Conversations are deleted only while more than this many exist."""


class KeyPool:
    """Ids of rows the generator may touch, with O(1) add, remove and random choice."""

    def __init__(self, ids: list[str] | None = None) -> None:
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        for item in ids or ():
            self.add(item)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: str) -> bool:
        return item in self._index

    def add(self, item: str) -> None:
        if item not in self._index:
            self._index[item] = len(self._ids)
            self._ids.append(item)

    def remove(self, item: str) -> None:
        position = self._index.pop(item, None)
        if position is None:
            return
        last = self._ids.pop()
        if position < len(self._ids):
            self._ids[position] = last
            self._index[last] = position

    def choice(self, rng: random.Random) -> str:
        return self._ids[rng.randrange(len(self._ids))]


@dataclass
class Pools:
    """The live conversations and messages, loaded once and kept current by the writers."""

    conversations: KeyPool = field(default_factory=KeyPool)
    messages: KeyPool = field(default_factory=KeyPool)
    topics: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> "Pools":
        """Every conversation and message except the help desk's (the semantic demo's fixed answers)."""
        return cls(
            conversations=KeyPool([r[0] for r in conn.execute("SELECT id FROM conversations WHERE id IS NOT ?",
                                                              (content.HELP_DESK_ID,))]),
            messages=KeyPool([r[0] for r in conn.execute("SELECT id FROM messages WHERE conversation_id IS NOT ?",
                                                         (content.HELP_DESK_ID,))]),
        )

    def topic_of(self, rng: random.Random, conversation_id: str) -> str:
        return self.topics.setdefault(conversation_id, content.pick_topic(rng))


@dataclass(frozen=True)
class Plan:
    """One transaction to perform: ``op`` and its values."""

    op: str
    values: dict[str, Any]


def fresh_id() -> str:
    """A new random uuid4 text id.

    Not drawn from the seeded ``rng``: the sample data and earlier runs with the same seed
    already used those ids, and a new row must never collide with an old one.
    """
    return str(uuid.uuid4())


def now_text(rng: random.Random) -> str:
    return content.iso_timestamp(rng, datetime.now(timezone.utc))


def plan_next(rng: random.Random, pools: Pools) -> Plan:
    """Choose the next operation, falling back to inserts when there is nothing to touch."""
    names = [name for name, _ in OPERATIONS]
    op = rng.choices(names, weights=[w for _, w in OPERATIONS])[0]
    if not len(pools.conversations):
        op = "insert_conversation"
    elif op in ("edit_message", "delete_message", "change_message_id") and not len(pools.messages):
        op = "insert_message"
    elif op == "delete_conversation" and len(pools.conversations) <= MIN_CONVERSATIONS:
        op = "insert_conversation"

    if op == "insert_conversation":
        conversation = conversation_row(rng)
        conversation["id"] = fresh_id()
        conversation["created_at"] = content.sqlite_timestamp(datetime.now(timezone.utc))
        conversation["updated_at"] = None
        conversation["is_active"] = 1
        topic = pools.topic_of(rng, conversation["id"])
        messages = [_new_message(rng, conversation["id"], topic) for _ in range(rng.randint(1, 3))]
        return Plan(op, {"conversation": conversation, "messages": messages})
    if op == "insert_message":
        conversation_id = pools.conversations.choice(rng)
        return Plan(op, {"message": _new_message(rng, conversation_id, pools.topic_of(rng, conversation_id))})
    if op == "insert_interaction":
        conversation_id = pools.conversations.choice(rng)
        row = agent_interaction_row(rng, conversation_id, pools.topic_of(rng, conversation_id))
        row["created_at"] = content.sqlite_timestamp(datetime.now(timezone.utc))
        return Plan(op, {"interaction": row})
    if op == "edit_message":
        topic = content.pick_topic(rng)
        return Plan(op, {"id": pools.messages.choice(rng),
                         "content": f"(edited) {content.paragraph(rng, topic, rng.randint(1, 3))}"})
    if op == "toggle_conversation":
        return Plan(op, {"id": pools.conversations.choice(rng), "updated_at": now_text(rng)})
    if op == "delete_message":
        return Plan(op, {"id": pools.messages.choice(rng)})
    if op == "delete_conversation":
        return Plan(op, {"id": pools.conversations.choice(rng)})
    if op == "change_message_id":
        return Plan(op, {"id": pools.messages.choice(rng), "new_id": fresh_id()})
    raise ValueError(f"unknown traffic operation {op!r}")  # pragma: no cover - OPERATIONS is closed


def _new_message(rng: random.Random, conversation_id: str, topic: str) -> dict[str, Any]:
    row = message_row(rng, conversation_id, topic)
    row["id"] = fresh_id()
    row["created_at"] = now_text(rng)
    return row


def update_pools(plan: Plan, changed: ChangedKeys | None, pools: Pools) -> None:
    """Keep the pools equal to what exists after ``plan`` (or drop a key that vanished)."""
    v = plan.values
    if changed is None:  # the row was gone: someone else deleted it
        if plan.op in ("edit_message", "delete_message", "change_message_id"):
            pools.messages.remove(v["id"])
        elif plan.op in ("toggle_conversation", "delete_conversation"):
            pools.conversations.remove(v["id"])
        elif plan.op == "insert_message":
            pools.conversations.remove(v["message"]["conversation_id"])
        return
    if plan.op == "insert_conversation":
        pools.conversations.add(v["conversation"]["id"])
        for message in v["messages"]:
            pools.messages.add(message["id"])
    elif plan.op == "insert_message":
        pools.messages.add(v["message"]["id"])
    elif plan.op == "delete_message":
        pools.messages.remove(v["id"])
    elif plan.op == "delete_conversation":
        pools.conversations.remove(v["id"])
        for table, key in changed:
            if table == "messages":
                pools.messages.remove(key[0])
    elif plan.op == "change_message_id":
        pools.messages.remove(v["id"])
        pools.messages.add(v["new_id"])
