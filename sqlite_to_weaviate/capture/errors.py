"""The one exception type capture raises, so callers (CLI, sidecar) can report it cleanly."""

from __future__ import annotations

from sqlite_to_weaviate.errors import S2WError


class CaptureError(S2WError):
    """Capture cannot be installed, repaired or used as asked; the message says why and what to do."""
