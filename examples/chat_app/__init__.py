"""An example SQLAlchemy 2.x chat application whose data the sidecar moves into Weaviate.

Models (``models``) match ``sqlite_to_weaviate.mapping.seed_schema_sql()`` column for
column, so the seed preset maps them unchanged. ``seed.build_sample_database`` writes a
realistic sample database, ``traffic.run_traffic`` keeps writing to it at a steady rate
(through the ORM or raw sqlite3) while the sidecar runs, and ``embed.embed_text`` is the
deterministic pseudo-embedding the chunks carry, so a demo can search them by text.
"""

from .embed import EMBEDDING_DIM, embed_text
from .models import (
    AgentInteraction,
    Base,
    Conversation,
    Document,
    DocumentChunk,
    Message,
    MultiModalContent,
    create_schema,
)

_LAZY = {"build_sample_database": "seed", "run_traffic": "traffic", "TrafficStats": "traffic"}


def __getattr__(name: str):
    """Import seed/traffic on first use, so ``python -m examples.chat_app.seed`` runs cleanly."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "EMBEDDING_DIM", "AgentInteraction", "Base", "Conversation", "Document", "DocumentChunk", "Message",
    "MultiModalContent", "TrafficStats", "build_sample_database", "create_schema", "embed_text", "run_traffic",
]
