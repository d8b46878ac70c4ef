"""Why a verify could not run (exit code 3): a wrong config, an unreachable store, a schema mismatch."""

from __future__ import annotations

from sqlite_to_weaviate.errors import S2WError


class VerifyError(S2WError):
    """The verifier cannot give a trustworthy answer; the message names the problem and the fix."""


class OrderError(VerifyError):
    """A stream was not in strictly ascending uuid order, so a merge-join would be wrong."""
