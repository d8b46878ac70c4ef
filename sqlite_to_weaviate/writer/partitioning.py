"""Keys hash to partitions: the unit of history jobs, of backoff, and of pending keys.

The hash is over the object's uuid (itself derived from table and primary key), so the
same key lands in the same partition in every process and every version.
"""

from __future__ import annotations

import uuid


def partition_of(object_id: uuid.UUID, partitions: int) -> int:
    """Stable partition number in ``[0, partitions)`` for an object id."""
    return int.from_bytes(object_id.bytes[:8], "big") % partitions
