"""What one call to a model returns, and the batch mechanics every embedder shares.

Kept apart from the embedders so each kind (:mod:`.embedders`, :mod:`.openai_api`) builds on
it without importing the others: checking an answer (untrusted until checked), finding the
inputs a model refuses inside a batch, estimating tokens for a rate limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import EmbedderTransient, InputRefused
from .text import as_float32, valid_vector

Sleep = Callable[[float], None]


@dataclass
class Embedded:
    """One vector per text (None where the model refused the text: reason in ``refused``)."""

    vectors: list[list[float] | None]
    requests: int = 0
    tokens: int | None = None
    truncated: int = 0
    refused: dict[int, str] = field(default_factory=dict)


def checked_vectors(vectors: Any, count: int, dims: int | None, who: str) -> list[list[float]]:
    """One finite vector of one length per text (an answer is untrusted until checked)."""
    rows = [list(map(float, v)) for v in vectors] if vectors is not None else []
    if len(rows) != count:
        raise EmbedderTransient(f"{who} returned {len(rows)} vectors for {count} texts")
    width = dims or (len(rows[0]) if rows else 0)
    for row in rows:
        if not valid_vector(row, width):
            raise EmbedderTransient(f"{who} returned a vector that is empty, non-finite or not {width} long")
    return [as_float32(row) for row in rows]


def isolate_refusals(call: Callable[[list[str]], list[list[float]]], texts: list[str]) -> Embedded:
    """Embed ``texts`` with ``call``; when the model refuses the batch, find the inputs it refuses.

    A refusal of a batch rarely says which input was at fault (OpenAI answers 400 for the
    whole request), so the batch is split in halves until each refused input stands
    alone; every other input is embedded. A refusal that names its index skips the
    search. ``requests`` counts every call made.
    """
    out = Embedded([None] * len(texts))

    def run(offset: int, chunk: list[str]) -> None:
        if not chunk:
            return
        out.requests += 1
        try:
            vectors = call(chunk)
        except InputRefused as exc:
            if len(chunk) == 1:
                out.refused[offset] = exc.reason
                return
            if exc.index is not None and 0 <= exc.index < len(chunk):
                out.refused[offset + exc.index] = exc.reason
                run(offset, chunk[:exc.index])
                run(offset + exc.index + 1, chunk[exc.index + 1:])
                return
            half = len(chunk) // 2
            run(offset, chunk[:half])
            run(offset + half, chunk[half:])
            return
        out.vectors[offset:offset + len(chunk)] = vectors

    run(0, list(texts))
    return out


def estimated_tokens(texts: Sequence[str]) -> int:
    """Tokens of ``texts`` for a rate limit before the server counts them: about 4 characters each."""
    return sum(max(1, math.ceil(len(t) / 4)) for t in texts)
