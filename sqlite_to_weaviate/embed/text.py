"""What exactly is embedded, and the fingerprints that decide whether it must be embedded again.

"Each embedding computed once" rests on three pure functions that the relay, the workers,
the verifier and the benches must agree on byte for byte:

* :func:`embedding_input` — the text of one named vector: the values of its source
  properties, in mapping order, joined by a newline. Absent and empty values are left
  out; a vector whose text is empty gets no vector at all (OpenAI refuses ``""``, and an
  empty text has no meaning to search for).
* :func:`text_sha256` — SHA-256 of that text's UTF-8 bytes: the cache key, with the
  embedder id (model *and* version), so a changed model never reuses an old vector.
* :func:`vector_sum` — a short SHA-256 of the vector as little-endian float32, stored
  beside the input fingerprint on the object. A vector replaced behind the tool's back
  (by another program, or a corrupted index) no longer matches its recorded sum, so the
  worker does not trust it on a re-send and ``verify --search`` reports it.

The fingerprint on the object (:func:`object_digest`) is ``<embedder id>|<text sha256>|<vector sum>``
in a property ``s2wVec_<vector name>`` that is neither searchable nor filterable.
"""

from __future__ import annotations

import hashlib
import math
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Prefix of the per-vector fingerprint property (``s2wVec_content`` for vector ``content``).
DIGEST_PREFIX = "s2wVec_"
#: Namespace of the cache entries' uuids: uuid5(CACHE_NAMESPACE, "<embedder id>\0<text sha256>").
CACHE_NAMESPACE = uuid.UUID("6f1d8a52-3c0e-4e55-9b7a-2a9c0d3b7e41")
VECTOR_SUM_HEX = 16


def digest_property(vector_name: str) -> str:
    """Name of the property holding the fingerprint of named vector ``vector_name``."""
    return DIGEST_PREFIX + vector_name


def embedding_input(properties: Mapping[str, Any], sources: Iterable[str]) -> str:
    """The text embedded for one vector: non-empty text values of ``sources`` joined by newlines."""
    parts = []
    for name in sources:
        value = properties.get(name)
        if isinstance(value, str) and value:
            parts.append(value)
    return "\n".join(parts)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_uuid(embedder_id: str, text_digest: str) -> uuid.UUID:
    """Deterministic id of a cache entry (one per embedder id and exact input text)."""
    return uuid.uuid5(CACHE_NAMESPACE, f"{embedder_id}\0{text_digest}")


def float32_bytes(vector: Sequence[float]) -> bytes:
    """The vector as little-endian float32 (how Weaviate stores it, and how the cache keeps it)."""
    return struct.pack(f"<{len(vector)}f", *vector)


def from_float32_bytes(raw: bytes) -> list[float]:
    if len(raw) % 4:
        raise ValueError(f"{len(raw)} bytes is not a whole number of float32 values")
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def as_float32(vector: Sequence[float]) -> list[float]:
    """Round every component to float32 (Weaviate stores float32; sums must match what it returns)."""
    return from_float32_bytes(float32_bytes(vector))


def vector_sum(vector: Sequence[float]) -> str:
    return hashlib.sha256(float32_bytes(vector)).hexdigest()[:VECTOR_SUM_HEX]


def valid_vector(vector: Any, dims: int | None = None) -> bool:
    """A non-empty list of finite numbers (of ``dims`` values when given): untrusted input is checked."""
    if not isinstance(vector, (list, tuple)) or not vector:
        return False
    if dims is not None and len(vector) != dims:
        return False
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector)


@dataclass(frozen=True)
class ObjectDigest:
    """The parsed fingerprint stored on an object for one named vector."""

    embedder_id: str
    text_sha256: str
    vector_sum: str

    def render(self) -> str:
        return f"{self.embedder_id}|{self.text_sha256}|{self.vector_sum}"

    def matches(self, embedder_id: str, text_digest: str, vector: Any) -> bool:
        """True when the stored vector is the one computed for this input by this embedder."""
        return (self.embedder_id == embedder_id and self.text_sha256 == text_digest and valid_vector(vector)
                and vector_sum(vector) == self.vector_sum)


def object_digest(embedder_id: str, text_digest: str, vector: Sequence[float]) -> str:
    return ObjectDigest(embedder_id, text_digest, vector_sum(vector)).render()


def parse_object_digest(value: Any) -> ObjectDigest | None:
    """The fingerprint from a stored property value, or None if absent or malformed."""
    if not isinstance(value, str):
        return None
    parts = value.rsplit("|", 2)
    if len(parts) != 3 or len(parts[1]) != 64 or len(parts[2]) != VECTOR_SUM_HEX:
        return None
    return ObjectDigest(*parts)
