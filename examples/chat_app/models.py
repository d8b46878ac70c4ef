"""ORM models of the chat application: exactly the schema of the seed mapping preset.

Each model declares its columns with the same declared types, NULL-ability, defaults,
keys and constraints as ``sqlite_to_weaviate.mapping.seed_schema_sql()``;
``tests/integration/test_examples.py`` compares ``pragma_table_xinfo`` (and foreign keys
and indexes) of a database created by ``Base.metadata.create_all`` with one created from
that SQL. Two details keep them identical:

* primary keys are declared ``nullable=True`` because the SQL says ``id TEXT PRIMARY
  KEY`` without ``NOT NULL`` (SQLAlchemy would otherwise add it);
* timestamps use :class:`~examples.chat_app.timestamps.IsoDateTime`, which renders
  ``DATETIME`` and keeps ISO 8601 text with its zone.

Deleting a conversation relies on the database's ``ON DELETE CASCADE`` / ``SET NULL``
(``passive_deletes=True``), so connections need ``PRAGMA foreign_keys=ON``
(``capture.attach(engine, foreign_keys=True)`` sets it); capture's triggers record the
cascaded changes too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BLOB,
    JSON,
    REAL,
    Boolean,
    Engine,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .timestamps import IsoDateTime

_NOW = text("CURRENT_TIMESTAMP")


def _json() -> JSON:
    """JSON column where Python None is SQL NULL (not the JSON text 'null')."""
    return JSON(none_as_null=True)


class Base(DeclarativeBase):
    """Declarative base of the chat application's models."""


class Conversation(Base):
    """A chat conversation; title and user may be unknown (the preset fills defaults)."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(Text, primary_key=True, nullable=True)
    title: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(IsoDateTime, nullable=False, server_default=_NOW)
    updated_at: Mapped[datetime | None] = mapped_column(IsoDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("1"))

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True
    )


class Message(Base):
    """One message of a conversation (role user | assistant | system | tool)."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(Text, primary_key=True, nullable=True)
    conversation_id: Mapped[str] = mapped_column(
        Text, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(Text, nullable=False)
    content: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(IsoDateTime, nullable=False, server_default=_NOW)
    tool_calls: Mapped[Any] = mapped_column(_json(), nullable=True)
    extra_data: Mapped[Any] = mapped_column(_json(), nullable=True)
    token_count: Mapped[int | None] = mapped_column(Integer)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

    __table_args__ = (Index("messages_conversation", "conversation_id"),)


class Document(Base):
    """A document split into chunks for retrieval."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(Text, primary_key=True, nullable=True)
    title: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text)
    doc_type: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(IsoDateTime, nullable=False, server_default=_NOW)
    updated_at: Mapped[datetime | None] = mapped_column(IsoDateTime)
    extra_data: Mapped[Any] = mapped_column(_json(), nullable=True)

    chunks: Mapped[list[DocumentChunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )


class DocumentChunk(Base):
    """A chunk of a document with its embedding (little-endian float32 BLOB)."""

    __tablename__ = "document_chunks"

    id: Mapped[str] = mapped_column(Text, primary_key=True, nullable=True)
    document_id: Mapped[str] = mapped_column(Text, ForeignKey("documents.id", ondelete="CASCADE"), nullable=False)
    chunk_index: Mapped[int] = mapped_column(Integer, nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    token_count: Mapped[int | None] = mapped_column(Integer)
    embedding: Mapped[bytes | None] = mapped_column(BLOB)
    created_at: Mapped[datetime] = mapped_column(IsoDateTime, nullable=False, server_default=_NOW)

    document: Mapped[Document] = relationship(back_populates="chunks")

    __table_args__ = (UniqueConstraint("document_id", "chunk_index"),)


class AgentInteraction(Base):
    """One agent or tool call made while answering in a conversation (rowid primary key)."""

    __tablename__ = "agent_interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(Text, ForeignKey("conversations.id", ondelete="SET NULL"))
    agent_name: Mapped[str] = mapped_column(Text, nullable=False)
    input_text: Mapped[str | None] = mapped_column(Text)
    output_text: Mapped[str | None] = mapped_column(Text)
    tool_name: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(REAL)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    success: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(IsoDateTime, nullable=False, server_default=_NOW)
    extra_data: Mapped[Any] = mapped_column(_json(), nullable=True)


class MultiModalContent(Base):
    """An image, audio clip, video or file attached to a conversation (WITHOUT ROWID)."""

    __tablename__ = "multimodal_content"

    id: Mapped[str] = mapped_column(Text, primary_key=True, nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(Text, ForeignKey("conversations.id", ondelete="SET NULL"))
    content_type: Mapped[str] = mapped_column(Text, nullable=False)
    mime_type: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    data: Mapped[bytes | None] = mapped_column(BLOB)
    file_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)  # unix milliseconds

    __table_args__ = {"sqlite_with_rowid": False}


TABLES: tuple[str, ...] = (
    "conversations", "messages", "documents", "document_chunks", "agent_interactions", "multimodal_content",
)
"""The six tables of the schema, parents before children."""


def create_schema(engine: Engine) -> None:
    """Create the six tables (idempotent) the way the app does: from the models."""
    Base.metadata.create_all(engine)
