"""Which outbox rows are read but not yet acknowledged, and the checkpoint that implies.

The checkpoint N means "every change with seq <= N is applied in Weaviate (or parked in
the dead-letter table)". It may only advance over a contiguous prefix of acknowledged
seqs: a later job finishing first must not let the checkpoint skip an earlier, still
in-flight change (invariant 1). A min-heap with lazy deletion keeps this O(log n).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class Ledger:
    def __init__(self, checkpoint: int) -> None:
        self._checkpoint = checkpoint
        self.read_cursor = checkpoint
        self._heap: list[int] = []
        self._acked: set[int] = set()

    def read(self, seq: int) -> None:
        """Record that ``seq`` has been read from the outbox (now owed an acknowledgement)."""
        if seq <= self.read_cursor:
            raise ValueError(f"outbox seq {seq} read out of order (cursor {self.read_cursor})")
        heapq.heappush(self._heap, seq)
        self.read_cursor = seq

    def ack(self, seqs: Iterable[int]) -> None:
        self._acked.update(seqs)
        while self._heap and self._heap[0] in self._acked:
            self._acked.discard(heapq.heappop(self._heap))

    @property
    def unacked(self) -> int:
        return len(self._heap) - len(self._acked)

    @property
    def checkpoint(self) -> int:
        """Highest seq such that it and everything before it are acknowledged."""
        if self._heap:
            return max(self._checkpoint, self._heap[0] - 1)
        return max(self._checkpoint, self.read_cursor)
