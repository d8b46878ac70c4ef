"""The one exception type capture raises, so callers (CLI, sidecar) can report it cleanly."""

from __future__ import annotations


class CaptureError(Exception):
    """Capture cannot be installed, repaired or used as asked; the message says why and what to do."""
