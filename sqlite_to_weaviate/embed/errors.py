"""How an embedder can fail, sorted by what the worker must do about it.

* :class:`EmbedderTransient` — bad weather (timeout, 429, 5xx, a malformed answer): retry
  with backoff; the job is handed back if it lasts.
* :class:`EmbedderConfigError` — not the row's fault and not cured by a quick retry (a
  wrong key, an unknown model, missing model files, no quota): the job is handed back,
  the message says what to fix, and no row is ever dead-lettered for it.
* :class:`InputRefused` — a permanent refusal of one input (too long for the model):
  that row becomes a dead letter with the reason; the rest of the batch is embedded.

User callables raise :class:`InputRefused` (importable as
``sqlite_to_weaviate.embed.InputRefused``) to refuse an input; any other exception they
raise counts as transient.
"""

from __future__ import annotations

from sqlite_to_weaviate.errors import S2WError


class EmbedderError(S2WError):
    """Base class of embedder failures."""


class EmbedderTransient(EmbedderError):
    """Retry later. ``retry_after``: seconds the server asked for (None: use backoff)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EmbedderConfigError(EmbedderError):
    """The embedder cannot work as configured; nothing a retry of the same request fixes quickly."""


class InputRefused(EmbedderError):
    """The model refuses this input for good. ``index``: position in the batch when known."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index
