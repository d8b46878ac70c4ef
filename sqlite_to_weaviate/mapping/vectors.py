"""Vectors computed by an embedder, and the collection versions they live in (pure data).

An :class:`EmbeddedVector` says which embedder makes a named vector from which text
properties; a :class:`CollectionVersion` is one physical collection of a table with such
vectors. ``sqlite_to_weaviate.mapping.versions`` reads the recorded versions; docs/embeddings.md
explains them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EmbeddedVector:
    """A named vector the workers compute with an embedder from the object's text properties.

    ``sources`` are property names (text), joined by ``embed.text.embedding_input``;
    ``embedder_id`` (model and version) is filled from the collection version that uses
    it (:mod:`.versions`) and is empty until a version is recorded.
    """

    name: str
    embedder: str
    sources: tuple[str, ...]
    source_columns: tuple[str, ...] = ()
    embedder_id: str = ""

    def spec(self) -> dict[str, Any]:
        """What the relay sends per vector: the worker embeds with it (see writer.embedding)."""
        return {"embedder": self.embedder, "id": self.embedder_id, "from": list(self.sources)}

    def same_as(self, other: "EmbeddedVector") -> bool:
        """Same vector name, embedder and input (ids are compared when both are known)."""
        return (self.name, self.embedder, self.sources) == (other.name, other.embedder, other.sources) and (
            not self.embedder_id or not other.embedder_id or self.embedder_id == other.embedder_id)


@dataclass(frozen=True)
class CollectionVersion:
    """One physical collection of a table whose vectors are computed (``<alias>_<name>``).

    ``state``: ``live`` (the alias points at it), ``building`` (filled beside the live one,
    not yet switched to) or ``standby`` (the previous live one, kept written for rollback).
    Every recorded version is written by the pipeline.
    """

    name: str
    state: str
    vectors: tuple[EmbeddedVector, ...]
