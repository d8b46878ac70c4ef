"""Build a realistic sample chat database: the starting point of the demo and the tests.

The schema is created from the ORM models (as the app would); rows are written with
plain ``sqlite3`` ``executemany`` in one transaction, because a demo database of
thousands of rows should take well under a second. Everything is drawn from one seeded
``random.Random``: the same ``seed`` gives the same database.

Run ``python -m examples.chat_app.seed --db PATH [--conversations N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import URL, create_engine

from sqlite_to_weaviate.mapping import encode_vector

from . import content
from .embed import embed_text
from .models import TABLES, create_schema


def build_sample_database(path: str | Path, *, conversations: int = 200, seed: int = 0,
                          support_faq: bool = False) -> dict[str, int]:
    """Create ``path`` with the chat schema and sample rows; return row counts per table.

    Per conversation: 2-12 messages, 0-3 agent interactions, an attachment 30% of the
    time. One document per four conversations (at least one), each with 2-6 chunks whose
    ``embedding`` is ``encode_vector(embed_text(chunk))`` (5% have none). ``support_faq``
    adds a help-desk conversation with the ten answers of ``content.SUPPORT_FAQ`` (message
    ids ``faq-0`` .. ``faq-9``), which the semantic-search demo and test look for. Refuses
    an existing non-empty file rather than appending duplicate sample data to it.
    """
    path = Path(path)
    if conversations < 0:
        raise ValueError(f"conversations must be >= 0, got {conversations}")
    if path.exists() and path.stat().st_size > 0:
        raise FileExistsError(f"{path} already exists; remove it or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(URL.create("sqlite", database=str(path)))
    try:
        create_schema(engine)
    finally:
        engine.dispose()

    rng = random.Random(seed)
    rows = _sample_rows(rng, conversations)
    if support_faq:
        _add_support_faq(rows)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("BEGIN IMMEDIATE")
        for table, table_rows in rows.items():
            if table_rows:
                columns = list(table_rows[0])
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [tuple(row[c] for c in columns) for row in table_rows],
                )
        conn.execute("COMMIT")
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
    finally:
        conn.close()


def _sample_rows(rng: random.Random, conversations: int) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {table: [] for table in TABLES}
    conversation_ids = []
    for _ in range(conversations):
        conversation = conversation_row(rng)
        conversation_ids.append(conversation["id"])
        rows["conversations"].append(conversation)
        topic = content.pick_topic(rng)
        for _ in range(rng.randint(2, 12)):
            rows["messages"].append(message_row(rng, conversation["id"], topic))
        for _ in range(rng.randint(0, 3)):
            rows["agent_interactions"].append(agent_interaction_row(rng, conversation["id"], topic))
        if rng.random() < 0.3:
            rows["multimodal_content"].append(multimodal_row(rng, conversation["id"], topic))
    for _ in range(max(1, conversations // 4)):
        document, chunks = document_rows(rng)
        rows["documents"].append(document)
        rows["document_chunks"].extend(chunks)
    return rows


def _add_support_faq(rows: dict[str, list[dict]]) -> None:
    rows["conversations"].append({"id": content.HELP_DESK_ID, "title": "Help desk", "user_id": "support",
                                  "created_at": "2024-06-01 09:00:00", "updated_at": None, "is_active": 1})
    for index, text in enumerate(content.SUPPORT_FAQ):
        rows["messages"].append({"id": f"faq-{index}", "conversation_id": content.HELP_DESK_ID, "role": "assistant",
                                 "content": text, "created_at": f"2024-06-01T09:{index:02d}:00Z", "tool_calls": None,
                                 "extra_data": None, "token_count": len(text.split())})


def conversation_row(rng: random.Random) -> dict:
    """One conversation; 10% untitled and 10% without a user (the preset's defaults)."""
    created = content.moment(rng)
    topic = content.pick_topic(rng)
    return {
        "id": content.new_id(rng),
        "title": None if rng.random() < 0.1 else content.title(rng, topic),
        "user_id": None if rng.random() < 0.1 else f"user-{rng.randrange(50):03d}",
        "created_at": content.sqlite_timestamp(created),
        "updated_at": None if rng.random() < 0.2 else content.iso_timestamp(rng, created + timedelta(hours=rng.uniform(0, 48))),
        "is_active": 0 if rng.random() < 0.15 else 1,
    }


def message_row(rng: random.Random, conversation_id: str, topic: str) -> dict:
    role = rng.choices(content.ROLES, weights=(45, 45, 5, 5))[0]
    text = content.paragraph(rng, topic, rng.randint(1, 4))
    return {
        "id": content.new_id(rng),
        "conversation_id": conversation_id,
        "role": role,
        "content": None if rng.random() < 0.02 else text,
        "created_at": content.iso_timestamp(rng, content.moment(rng)),
        "tool_calls": content.tool_calls(rng, role),
        "extra_data": content.extra_data(rng),
        "token_count": len(text.split()),
    }


def agent_interaction_row(rng: random.Random, conversation_id: str | None, topic: str) -> dict:
    """An agent call; ``id`` is left to SQLite (rowid alias)."""
    return {
        "conversation_id": conversation_id,
        "agent_name": rng.choice(content.AGENTS),
        "input_text": content.sentence(rng, topic),
        "output_text": None if rng.random() < 0.1 else content.paragraph(rng, topic, 2),
        "tool_name": rng.choice(content.TOOLS),
        "score": round(rng.random(), 4) if rng.random() < 0.9 else None,
        "latency_ms": rng.randint(5, 20_000),
        "success": rng.choice((0, 1, 1, 1, None)),
        "created_at": content.sqlite_timestamp(content.moment(rng)),
        "extra_data": content.extra_data(rng),
    }


def multimodal_row(rng: random.Random, conversation_id: str | None, topic: str) -> dict:
    kind, mime = rng.choice(content.MEDIA)
    data = rng.randbytes(rng.randint(16, 512)) if rng.random() < 0.9 else None
    return {
        "id": content.new_id(rng),
        "conversation_id": conversation_id,
        "content_type": kind,
        "mime_type": mime,
        "description": f"{kind} about {content.sentence(rng, topic, 6)}",
        "data": data,
        "file_size": len(data) if data is not None else None,
        "created_at": content.unix_ms(content.moment(rng)),
    }


def document_rows(rng: random.Random) -> tuple[dict, list[dict]]:
    """A document and its 2-6 chunks, each chunk embedded with ``embed_text``."""
    topic = content.pick_topic(rng)
    created = content.moment(rng)
    chunk_texts = [content.paragraph(rng, topic, rng.randint(2, 5)) for _ in range(rng.randint(2, 6))]
    body = "\n\n".join(chunk_texts)
    document = {
        "id": content.new_id(rng),
        "title": content.title(rng, topic),
        "content": body,
        "source_url": f"https://docs.example.com/{topic}/{rng.randrange(10_000)}",
        "doc_type": rng.choice(content.DOC_TYPES),
        "file_size": len(body.encode("utf-8")),
        "created_at": content.sqlite_timestamp(created),
        "updated_at": None if rng.random() < 0.5 else content.iso_timestamp(rng, created + timedelta(days=1)),
        "extra_data": json.dumps({"topic": topic, "language": "en"}),
    }
    chunks = [
        {
            "id": content.new_id(rng),
            "document_id": document["id"],
            "chunk_index": index,
            "content": text,
            "token_count": len(text.split()),
            "embedding": None if rng.random() < 0.05 else encode_vector(embed_text(text)),
            "created_at": document["created_at"],
        }
        for index, text in enumerate(chunk_texts)
    ]
    return document, chunks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.chat_app.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, type=Path, help="Path of the database to create.")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="Replace an existing file (and its -wal/-shm).")
    parser.add_argument("--support-faq", action="store_true", help="Add the help-desk conversation (semantic demo).")
    args = parser.parse_args(argv)
    if args.force:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    try:
        counts = build_sample_database(args.db, conversations=args.conversations, seed=args.seed,
                                       support_faq=args.support_faq)
    except FileExistsError as exc:
        print(f"error: {exc} (or pass --force)", file=sys.stderr)
        return 2
    print(json.dumps({"db": str(args.db), "rows": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
