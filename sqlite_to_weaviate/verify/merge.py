"""Pure merge-join of two uuid-sorted (uuid, content hash) streams into differences.

Both inputs are iterables of ``(uuid_bytes, hash)`` in strictly ascending order of the
16 uuid bytes (which is also the order of the canonical lowercase hyphenated text, so
either side may be produced from text as long as it is converted consistently). Memory is
O(1): one item of each side at a time. An out-of-order item raises :class:`OrderError`
instead of silently producing wrong "missing"/"extra" pairs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .errors import OrderError


class Kind(str, enum.Enum):
    MISSING = "missing"  # row exists, object does not
    EXTRA = "extra"      # object exists, row does not
    STALE = "stale"      # both exist, content hash differs


@dataclass(frozen=True)
class Difference:
    kind: Kind
    uuid: bytes
    source_hash: str | None
    target_hash: str | None


def _ordered(items: Iterable[tuple[bytes, str | None]], side: str) -> Iterator[tuple[bytes, str | None]]:
    previous: bytes | None = None
    for item in items:
        key = item[0]
        if previous is not None and key <= previous:
            raise OrderError(
                f"{side} stream is not in strictly ascending uuid order ({previous.hex()} then {key.hex()}); "
                "the merge-join cannot be trusted"
            )
        previous = key
        yield item


def merge_join(
    source: Iterable[tuple[bytes, str | None]],
    target: Iterable[tuple[bytes, str | None]],
    *,
    on_match: Callable[[bytes], None] | None = None,
) -> Iterator[Difference]:
    """Yield every difference between ``source`` (SQLite) and ``target`` (Weaviate).

    ``on_match`` (optional) is called with the uuid of every pair that agrees, so callers
    can count checked rows without a second pass.
    """
    src = _ordered(source, "SQLite")
    tgt = _ordered(target, "Weaviate")
    s = next(src, None)
    t = next(tgt, None)
    while s is not None or t is not None:
        if t is None or (s is not None and s[0] < t[0]):
            yield Difference(Kind.MISSING, s[0], s[1], None)
            s = next(src, None)
        elif s is None or t[0] < s[0]:
            yield Difference(Kind.EXTRA, t[0], None, t[1])
            t = next(tgt, None)
        else:
            if s[1] != t[1]:
                yield Difference(Kind.STALE, s[0], s[1], t[1])
            elif on_match is not None:
                on_match(s[0])
            s = next(src, None)
            t = next(tgt, None)
