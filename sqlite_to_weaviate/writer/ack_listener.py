"""Wait for acknowledgements in a thread of their own, so the relay's sleeps keep their length.

While jobs are in flight the relay sleeps until an ack arrives or a short deadline passes
(the live linger ending, or ``ACK_WAIT_S`` to look at the outbox again: the file watcher
rests meanwhile). It used to do that with ``BLPOP`` and the deadline as its timeout, but
Redis expires a blocked client only when its event loop next wakes, which on a quiet
server is its cron tick (``hz`` 10 by default): measured in the live-first bench, a 50 ms
``BLPOP`` took 51 ms on average and 130 ms at p99, and every live change committed
meanwhile waited that long for its job.

Here one thread blocks on the ack list with a long timeout and hands what it pops to the
relay through a lock-protected list, setting the relay's wake event; the relay sleeps on
that event with its exact deadline. The thread only moves bytes: the relay opens (verifies)
the acks itself, in its own thread, like those its pass pops. An ack popped here that the
relay never takes (it stops or crashes first) is the same as an ack lost with the relay's
memory: the job's keys are past no checkpoint, so the next run sends them again.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

from sqlite_to_weaviate.logs import get_logger

BLOCK_S = 0.25       # the thread's own BLPOP timeout: about how long a stop waits for it
RETRY_S = 0.5        # after a Redis error (the relay's pass notices and backs off on its own)


class AckListener:
    """Pops acks in a background thread and wakes the relay (``wake``) for each batch of them."""

    def __init__(self, redis_client: Any, key: str, wake: threading.Event) -> None:
        self._redis = redis_client
        self._key = key
        self._wake = wake
        self._lock = threading.Lock()
        self._raw: list[bytes] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "AckListener":
        self._thread = threading.Thread(target=self._run, name="s2w-ack-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = BLOCK_S + 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def take(self) -> list[bytes]:
        """Every ack popped since the last call (raw: the relay verifies them)."""
        with self._lock:
            raw, self._raw = self._raw, []
        return raw

    def _run(self) -> None:
        log = get_logger("s2w.relay")
        while not self._stop.is_set():
            try:
                item = self._redis.blpop([self._key], timeout=BLOCK_S)
            except redis.RedisError as exc:
                log.debug("ack listener: redis error", error=str(exc))
                self._stop.wait(RETRY_S)
                continue
            if item is None:
                continue
            with self._lock:
                self._raw.append(item[1])
            self._wake.set()
