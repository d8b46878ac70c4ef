"""Semantic search on the migrated chat data: the demo's mapping and its query helper.

The mapping is the seed preset plus one named vector, ``content``, on messages, computed by
the workers with the local all-MiniLM-L6-v2 model that ``scripts/setup`` fetched (no model
service, nothing downloaded at run time). The ``Message`` collection then is an alias over
``Message_v1`` (docs/embeddings.md), and a query embedded by the same model finds messages
by meaning: ``search_messages(..., "How do I reset my password?")`` ranks the help-desk
answer about recovering login credentials first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlite_to_weaviate.mapping import seed_preset_toml

EMBEDDING_BLOCK = """
# --- semantic search (docs/embeddings.md): vectors computed by the workers, each once
[embedders.minilm]
kind = "local"
model = "all-MiniLM-L6-v2"

[tables.messages.vectors.content]
embedder = "minilm"              # from the columns with vectorize = true (content)
"""


def semantic_mapping_toml() -> str:
    return seed_preset_toml() + EMBEDDING_BLOCK


def write_semantic_mapping(path: str | Path) -> Path:
    path = Path(path)
    path.write_text(semantic_mapping_toml())
    return path


def search_messages(client: Any, embedder: Any, collection: str, query: str, limit: int = 3) -> list[tuple[str, float]]:
    """(message text, cosine distance) of the messages nearest to ``query`` by meaning."""
    from weaviate.classes.query import MetadataQuery

    from sqlite_to_weaviate.embed.query import query_vector

    found = client.collections.use(collection).query.near_vector(
        near_vector=query_vector(embedder, query), target_vector="content", limit=limit,
        return_properties=["content"], return_metadata=MetadataQuery(distance=True))
    return [(str(o.properties.get("content")), float(o.metadata.distance)) for o in found.objects]
