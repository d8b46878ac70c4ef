"""Backfill: stream historical rows into Weaviate while the application keeps writing.

Backfill never carries row images of its own: it feeds keys, page by page, into the same
outbox the triggers write, so a historical row goes through the same ordered,
read-current-state path as live changes and can never land over a newer one.
"""

from .checkpoint import PAUSED_KEY, TableCheckpoint, set_paused
from .keys import decode_key, encode_key, key_from_json, key_to_json
from .options import BackfillOptions, BackfillReport, TablePlan, TableResult
from .progress import ProgressDisplay, ProgressEvent
from .runner import backfill, wait_applied
from .tables import CaptureNotInstalled
from .throttle import Throttle, throttle_delay

__all__ = [
    "PAUSED_KEY", "BackfillOptions", "BackfillReport", "CaptureNotInstalled", "ProgressDisplay", "ProgressEvent",
    "TableCheckpoint", "TablePlan", "TableResult", "Throttle", "backfill", "decode_key", "encode_key",
    "key_from_json", "key_to_json", "set_paused", "throttle_delay", "wait_applied",
]
