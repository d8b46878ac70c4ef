"""Deterministic embedders for tests (``kind = "callable"`` in a mapping file).

They run inside worker subprocesses, so tests count their calls through the pipeline's
own counters (``embed.counters``), never through state in this module.
"""

from __future__ import annotations

import hashlib
import math

from sqlite_to_weaviate.embed import InputRefused

DIMS = 16
REFUSE_MARK = "__REFUSE__"


def vector_for(text: str, dims: int = DIMS, salt: str = "") -> list[float]:
    """A unit vector from sha256(salt + text): equal texts, equal vectors; different texts, unrelated ones."""
    raw = b""
    counter = 0
    while len(raw) < dims:
        raw += hashlib.sha256(f"{salt}{counter}\0{text}".encode()).digest()
        counter += 1
    values = [(b - 127.5) / 127.5 for b in raw[:dims]]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def hash_vectors(texts: list[str]) -> list[list[float]]:
    """16-dim vectors; an input containing REFUSE_MARK is refused (like a text too long for a model)."""
    for index, text in enumerate(texts):
        if REFUSE_MARK in text:
            raise InputRefused(f"input {index} is too long for this model (test refusal)", index=None)
    return [vector_for(t) for t in texts]


def hash_vectors_v2(texts: list[str]) -> list[list[float]]:
    """Another "model": 24-dim vectors from a different hash."""
    return [vector_for(t, 24, salt="v2") for t in texts]
