"""Embed a search query with the same model the pipeline used for the objects.

A near-vector query only means something when the query is embedded by the very model
(and version) that embedded the collection. This gives applications, the demo and tests
that embedder from the mapping file::

    from sqlite_to_weaviate.embed.query import load_embedder, query_vector
    embedder = load_embedder("mapping.toml", "minilm")
    client.collections.use("Message").query.near_vector(
        query_vector(embedder, "How do I reset my password?"), target_vector="content", limit=5)
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .config import PlainReader, parse_embedders
from .embedders import Embedder, build_embedder
from .errors import EmbedderConfigError


def load_embedder(mapping_file: str | Path, name: str) -> Embedder:
    """The embedder ``[embedders.<name>]`` of a mapping file (a local model loads in ~0.3 s)."""
    try:
        data = tomllib.loads(Path(mapping_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EmbedderConfigError(f"{mapping_file}: cannot read the mapping file: {exc}") from None
    specs = parse_embedders(PlainReader(str(mapping_file)), data.get("embedders", {}))
    if name not in specs:
        raise EmbedderConfigError(f"{mapping_file}: no [embedders.{name}] (defined: {sorted(specs)})")
    return build_embedder(specs[name])


def query_vector(embedder: Any, text: str) -> list[float]:
    """One vector for ``text`` (raises EmbedderConfigError if the model refuses it)."""
    result = embedder.embed([text])
    vector = result.vectors[0]
    if vector is None:
        raise EmbedderConfigError(f"the model refused the query: {result.refused.get(0)}")
    return vector
