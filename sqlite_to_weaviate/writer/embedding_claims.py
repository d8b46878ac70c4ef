"""Claims: concurrent workers embed each text once.

Before calling a model, a job claims its inputs in Redis (``SET NX`` with a TTL); an input
another job is embedding right now is awaited in the cache instead (the claimer stores
the vector as soon as its slice is done, or marks the input refused). A claim that is
released without a result, or outlives the wait, is computed by the waiter after all:
Redis is untrusted, so a claim can delay a vector, never lose it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlite_to_weaviate.embed.cache import CacheKey, EmbeddingCache

Guard = Callable[[], None]

CLAIM_TTL_MS = 120_000
CLAIM_WAIT_S = 30.0
REFUSED_PREFIX = "refused:"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_MARK_REFUSED = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                 "return redis.call('SET', KEYS[1], ARGV[2], 'PX', 60000) end return 0")


class Claims:
    """"I am embedding this text now" markers in Redis, so concurrent workers embed it once."""

    def __init__(self, redis_conn: Any, namespace: str) -> None:
        import uuid

        self._redis = redis_conn
        self._namespace = namespace
        self._token = uuid.uuid4().hex

    def _key(self, key: CacheKey) -> str:
        return f"{self._namespace}:embedclaim:{key.embedder_id}:{key.text_sha256}"

    def take(self, keys: list[CacheKey]) -> tuple[list[CacheKey], list[CacheKey]]:
        """(keys this job claimed, keys another job is embedding)."""
        if not keys:
            return [], []
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.set(self._key(key), self._token, nx=True, px=CLAIM_TTL_MS)
        taken = pipe.execute()
        return [k for k, ok in zip(keys, taken) if ok], [k for k, ok in zip(keys, taken) if not ok]

    def release(self, keys: list[CacheKey], refused: dict[CacheKey, str]) -> None:
        """Done (the vectors are cached): drop the claims; refused texts stay marked a minute, with the reason."""
        if not keys:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                if key in refused:
                    pipe.eval(_MARK_REFUSED, 1, self._key(key), self._token, REFUSED_PREFIX + refused[key][:500])
                else:
                    pipe.eval(_RELEASE, 1, self._key(key), self._token)
            pipe.execute()
        except Exception:  # noqa: BLE001 - claims expire on their own; never fail a job for them
            pass

    def await_others(self, keys: list[CacheKey], cache: EmbeddingCache, guard: Guard,
                     run: Callable[[Callable[[], Any]], Any], *, timeout: float
                     ) -> tuple[dict[CacheKey, list[float]], dict[CacheKey, str], list[CacheKey]]:
        """(vectors found in the cache, refusals marked by the claimer, keys to compute here after all)."""
        found: dict[CacheKey, list[float]] = {}
        refused: dict[CacheKey, str] = {}
        compute_here: list[CacheKey] = []
        pending = list(keys)
        deadline = time.monotonic() + timeout
        while pending:
            guard()
            found.update(run(lambda: cache.lookup(pending)))
            pending = [k for k in pending if k not in found]
            if not pending:
                break
            states = self._redis.mget([self._key(k) for k in pending])
            still, released = [], []
            for key, state in zip(pending, states):
                text = state.decode("utf-8", "replace") if isinstance(state, bytes) else state
                if text is None:
                    released.append(key)
                elif text.startswith(REFUSED_PREFIX):
                    refused[key] = text[len(REFUSED_PREFIX):]
                else:
                    still.append(key)
            if released:  # finished (and cached) since our look, or given up: look once more, else compute here
                found.update(run(lambda: cache.lookup(released)))
                compute_here += [k for k in released if k not in found]
            pending = still
            if pending and time.monotonic() >= deadline:
                compute_here += pending
                break
            if pending:
                time.sleep(0.1)
        return found, refused, compute_here
