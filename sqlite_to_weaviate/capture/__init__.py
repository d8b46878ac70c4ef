"""Capture: every committed row change lands in the outbox table in the same transaction.

Key-only SQLite triggers (generated from the live schema) record (seq, table, op, key) in the
live lane (``store.lanes``); the SQLAlchemy integration adds connection pragmas, BEGIN
IMMEDIATE and per-transaction context.
Nothing here ever talks to Redis or Weaviate, so capture can never fail the app's write
because a downstream service is down.
"""

from .drift import Drift, RepairReport, detect_drift, repair_drift
from .errors import CaptureError
from .health import CaptureStatus, TableStatus, status
from .install import InstallReport, install, schema_change, schema_hash, uninstall
from .sqlalchemy_hooks import CaptureHandle, attach, set_context
from .triggers import TRIGGER_VERSION, generate_triggers

__all__ = [
    "TRIGGER_VERSION", "CaptureError", "CaptureHandle", "CaptureStatus", "Drift", "InstallReport",
    "RepairReport", "TableStatus", "attach", "detect_drift", "generate_triggers", "install",
    "repair_drift", "schema_change", "schema_hash", "set_context", "status", "uninstall",
]
