"""Embedders: the model behind one ``[embedders.<name>]`` block, behind one small interface.

``embed(texts) -> Embedded`` takes a batch of non-empty texts and returns one float32
vector per text, in order, plus what it cost (requests, tokens when the model reports or
counts them). Errors are the three classes of :mod:`.errors`. Three kinds:

* ``local`` — the numpy encoder of :mod:`.minilm` over a bundled model (fetched by
  ``scripts/setup``) or a model directory; id ``<model>@<weights sha256[:8]>``.
* ``openai`` — any OpenAI-compatible ``POST /v1/embeddings`` (:mod:`.openai_api`);
  id ``openai:<model>[/<dimensions>][@<revision>]``.
* ``callable`` — ``package.module:function`` taking a list of texts and returning one
  vector per text; id ``callable:<function>@<version>``.

Batching to the configured size and rate limiting happen here, so every caller gets them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .batches import Embedded, Sleep, checked_vectors, isolate_refusals
from .config import EmbedderSpec
from .errors import EmbedderConfigError, EmbedderTransient, InputRefused

class Embedder(Protocol):
    spec: EmbedderSpec
    id: str

    def embed(self, texts: Sequence[str], *, wait: Sleep | None = None) -> Embedded: ...


class LocalEmbedder:
    """The numpy encoder; loaded once per process (about 0.3 s and 130 MB)."""

    def __init__(self, spec: EmbedderSpec) -> None:
        from .minilm import SentenceEncoder
        from .model_files import BUNDLED_MODELS, bundled_model_dir, model_dir_id

        self.spec = spec
        if spec.path is not None:
            directory = spec.path
            self.id = model_dir_id(spec.path)
        else:
            directory = bundled_model_dir(spec.model or "")
            self.id = BUNDLED_MODELS[spec.model or ""].embedder_id
        self.encoder = SentenceEncoder(directory, max_tokens=spec.max_tokens)
        self.dims = self.encoder.dims
        self._lock = threading.Lock()  # numpy releases the GIL; one forward pass at a time per process

    def embed(self, texts: Sequence[str], *, wait: Sleep | None = None) -> Embedded:
        with self._lock:
            encoded = self.encoder.encode(list(texts), batch_size=self.spec.batch_size)
        return Embedded(checked_vectors(encoded.vectors.tolist(), len(texts), self.dims, f"model {self.id}"), requests=1,
                        tokens=encoded.tokens, truncated=encoded.truncated)


class CallableEmbedder:
    """``module:function(texts) -> vectors``; raise :class:`InputRefused` to refuse an input."""

    def __init__(self, spec: EmbedderSpec) -> None:
        self.spec = spec
        self.id = spec.embedder_id()
        module_name, _, function_name = (spec.function or "").partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EmbedderConfigError(f"embedder {spec.name!r}: cannot import {module_name!r}: {exc}") from None
        function = getattr(module, function_name, None)
        if not callable(function):
            raise EmbedderConfigError(f"embedder {spec.name!r}: {spec.function} is not a function")
        self.function = function
        self.dims: int | None = None

    def embed(self, texts: Sequence[str], *, wait: Sleep | None = None) -> Embedded:
        result = Embedded([None] * len(texts))
        for start in range(0, len(texts), self.spec.batch_size):
            chunk = list(texts[start:start + self.spec.batch_size])
            part = isolate_refusals(self._call, chunk)
            result.vectors[start:start + len(chunk)] = part.vectors
            result.refused.update({start + i: reason for i, reason in part.refused.items()})
            result.requests += part.requests
        return result

    def _call(self, chunk: list[str]) -> list[list[float]]:
        try:
            vectors = self.function(chunk)
        except InputRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code: any other failure is retried
            raise EmbedderTransient(f"{self.spec.function} failed: {type(exc).__name__}: {exc}") from None
        rows = checked_vectors(vectors, len(chunk), self.dims, self.spec.function or "callable")
        self.dims = self.dims or len(rows[0])
        return rows


def build_embedder(spec: EmbedderSpec, *, limiter_factory: Callable[[str, float], Any] | None = None) -> Embedder:
    """The embedder for ``spec`` (loads the model or checks the function). Raises EmbedderConfigError."""
    if spec.kind == "local":
        return LocalEmbedder(spec)
    if spec.kind == "callable":
        return CallableEmbedder(spec)
    from .openai_api import OpenAIEmbedder

    return OpenAIEmbedder(spec, limiter_factory=limiter_factory)
