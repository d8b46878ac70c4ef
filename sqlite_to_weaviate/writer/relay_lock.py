"""One relay per database: an exclusive file lock beside it, released by the kernel if the relay dies.

Two relays on one database would dispatch the same outbox rows with different fence
tokens and fight over every partition; the lock makes the second one fail at once with a
message that says so.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import S2WError


class RelayAlreadyRunning(S2WError):
    """Another relay holds the lock for this database."""


class RelayLock:
    """An exclusive flock beside the database; released by the kernel if the relay dies."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".s2w-relay.lock")
        self._fh: Any = None

    def acquire(self) -> None:
        self._fh = open(self.path, "a+")  # noqa: SIM115 - held for the relay's lifetime
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            self._fh = None
            raise RelayAlreadyRunning(
                f"another relay is already running for {self.path.with_suffix('')} (lock {self.path}); "
                "run exactly one relay per database"
            ) from None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
