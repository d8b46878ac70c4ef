"""Error types shared across subpackages.

Every error the tool raises on purpose derives from :class:`S2WError`, so the CLI can turn
it into one clear line and a documented exit code instead of a traceback.
"""

from __future__ import annotations


class S2WError(Exception):
    """Base class: an expected failure with a message written for the operator."""


class ConfigError(S2WError):
    """A setting, URL or file is invalid; the message names the setting and the fix."""


class LocalStackError(S2WError):
    """A local Weaviate or Redis server could not be built, started or reached."""
