"""Verify: reconcile SQLite and Weaviate by content hash, report every difference, repair it.

Both sides are streamed (never whole tables in memory) and merge-joined in uuid order;
repairs are re-enqueued through the outbox so they are ordered with live traffic.

The CLI command is in :mod:`sqlite_to_weaviate.cli.verify`; docs/verify.md describes the
algorithm and the exit codes.
"""

from .errors import OrderError, VerifyError
from .fields import FieldDiff, compare_object
from .merge import Difference, Kind, merge_join
from .report import (
    EXIT_CLEAN, EXIT_DIFFERENCES, EXIT_ERROR, EXIT_REPAIRED, CappedList, Entry, TableReport, VerifyReport,
)
from .run import Progress, verify, verify_or_error

__all__ = [
    "EXIT_CLEAN", "EXIT_DIFFERENCES", "EXIT_ERROR", "EXIT_REPAIRED", "CappedList", "Difference", "Entry",
    "FieldDiff", "Kind", "OrderError", "Progress", "TableReport", "VerifyError", "VerifyReport",
    "compare_object", "merge_join", "verify", "verify_or_error",
]
