"""What embedding cost, per embedder: published by every worker, read by ``status`` and ``/metrics``.

Workers have Redis and Weaviate only, so each job adds its counts to one Redis hash per
namespace (``<namespace>:embeddings``, field ``<counter>|<embedder id>``, HINCRBY in one
pipeline per job). Redis is untrusted and may be wiped: these numbers are informational
(a wipe resets them, a forger can inflate them) and nothing decides anything from them.

Counters: ``requests`` (calls to the model), ``embedded`` (inputs the model embedded),
``chars`` and ``tokens`` embedded (tokens when the model reports or counts them),
``reused_object`` (the object already held the vector of this exact input: no lookup, no
call), ``reused_cache`` (found in the cache collection), ``refused`` (inputs the model
refused: dead letters), ``truncated`` (inputs the local model cut at its token limit).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

COUNTERS = ("requests", "embedded", "chars", "tokens", "reused_object", "reused_cache", "refused", "truncated")


def counters_key(namespace: str) -> str:
    """The hash of one pipeline namespace (named like writer.redis_keys.RedisKeys' keys)."""
    return f"{namespace}:embeddings"


class Tally:
    """Counts of one job, per embedder id, flushed to Redis once."""

    def __init__(self) -> None:
        self.counts: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, embedder_id: str, counter: str, amount: int = 1) -> None:
        if amount:
            self.counts[embedder_id][counter] += amount

    def total(self, counter: str) -> int:
        return sum(c.get(counter, 0) for c in self.counts.values())

    def flush(self, redis_conn: Any, namespace: str) -> None:
        if not self.counts:
            return
        pipe = redis_conn.pipeline(transaction=False)
        key = counters_key(namespace)
        for embedder_id, counts in self.counts.items():
            for counter, amount in counts.items():
                pipe.hincrby(key, f"{counter}|{embedder_id}", amount)
        pipe.execute()
        self.counts.clear()


def read_counters(redis_conn: Any, namespace: str) -> dict[str, dict[str, int]]:
    """embedder id -> counter -> value, parsed defensively (unknown or malformed fields are skipped)."""
    out: dict[str, dict[str, int]] = {}
    for raw_field, raw_value in (redis_conn.hgetall(counters_key(namespace)) or {}).items():
        name = raw_field.decode("utf-8", "replace") if isinstance(raw_field, bytes) else str(raw_field)
        counter, sep, embedder_id = name.partition("|")
        if not sep or counter not in COUNTERS or not embedder_id:
            continue
        try:
            value = int(raw_value)
        except (TypeError, ValueError):
            continue
        out.setdefault(embedder_id, {c: 0 for c in COUNTERS})[counter] = max(0, value)
    return out


def hit_rate(counts: dict[str, int]) -> float | None:
    """Share of vectors that did not need the model (None before any)."""
    reused = counts.get("reused_object", 0) + counts.get("reused_cache", 0)
    total = reused + counts.get("embedded", 0)
    return reused / total if total else None


def summary_lines(counters: dict[str, dict[str, int]]) -> list[str]:
    """One line per embedder for ``status``."""
    lines = []
    for embedder_id, c in sorted(counters.items()):
        rate = hit_rate(c)
        lines.append(
            f"{embedder_id}: {c['embedded']:,} embedded in {c['requests']:,} call(s), {c['chars']:,} chars"
            + (f", {c['tokens']:,} tokens" if c["tokens"] else "")
            + f"; reused {c['reused_object']:,} from objects, {c['reused_cache']:,} from the cache"
            + (f" (hit rate {rate:.1%})" if rate is not None else "")
            + (f"; {c['refused']:,} refused" if c["refused"] else "")
            + (f"; {c['truncated']:,} truncated" if c["truncated"] else ""))
    return lines
