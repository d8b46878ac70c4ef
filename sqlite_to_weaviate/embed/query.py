"""Embed a search query with the same model the pipeline used for the objects.

A near-vector query only means something when the query is embedded by the very model
(and version) that embedded the collection. This gives applications, the demo and
``verify --search`` that embedder from the mapping file::

    from sqlite_to_weaviate.embed.query import load_embedder
    embedder = load_embedder("mapping.toml", "minilm")
    vector = embedder.embed(["How do I reset my password?"]).vectors[0]
    client.collections.use("Message").query.near_vector(vector, target_vector="content", limit=5)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .embedders import Embedder, build_embedder
from .errors import EmbedderConfigError


def load_embedder(mapping_file: str | Path, name: str) -> Embedder:
    """The embedder ``[embedders.<name>]`` of a mapping file (a local model loads in ~0.3 s)."""
    from sqlite_to_weaviate.mapping import load_mapping_config

    config = load_mapping_config(mapping_file)
    spec = config.embedders.get(name)
    if spec is None:
        raise EmbedderConfigError(f"{mapping_file}: no [embedders.{name}] (defined: {sorted(config.embedders)})")
    return build_embedder(spec)


def query_vector(embedder: Any, text: str) -> list[float]:
    """One vector for ``text`` (raises EmbedderConfigError if the model refuses it)."""
    result = embedder.embed([text])
    vector = result.vectors[0]
    if vector is None:
        raise EmbedderConfigError(f"the model refused the query: {result.refused.get(0)}")
    return vector
