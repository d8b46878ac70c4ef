"""Wake the relay when the database changes: watchdog events as hints, a slow poll as fallback.

In WAL mode a commit modifies ``app.db-wal``; ``-wal``/``-shm`` come and go with
connections, so the whole directory is watched and events for the database's files set
an event. Events coalesce and may arrive early, so the relay always drains until empty
and never relies on an event for correctness: the poll interval bounds the latency when
an event is missed.

Every write to the -wal is an event that watchdog's threads handle in Python: during a
backfill (whose own writes go to the same file) that was about a sixth of the relay
process's CPU, spent on wake-ups nobody waited for. So the relay quiets the watcher
(:meth:`DatabaseWatcher.quiet`) while it has not slept on the event for a while, and
listens again before it does, looking once more before it sleeps.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from sqlite_to_weaviate.logs import get_logger


RETRY_S = 10.0  # while watching fails, how often to try again (each try may cost an inotify instance)


class _Handler(FileSystemEventHandler):
    def __init__(self, database: Path, event: threading.Event) -> None:
        self._prefix = str(database)
        self._event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = event.src_path if isinstance(event.src_path, str) else event.src_path.decode()
        if path.startswith(self._prefix):
            self._event.set()


class DatabaseWatcher:
    """Sets ``event`` whenever the database file or its -wal/-journal changes (while listening)."""

    def __init__(self, database: Path, event: threading.Event) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._handler = _Handler(database.resolve(), event)
        self._directory = str(database.resolve().parent)
        self._watch: ObservedWatch | None = None
        self._retry_at = 0.0  # while watching fails: when to try again (0: not failing)

    def start(self) -> "DatabaseWatcher":
        """Start watching; an error (no inotify instance left) is raised here, at start-up."""
        self._observer.start()
        try:
            self._watch = self._observer.schedule(self._handler, self._directory, recursive=False)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def listening(self) -> bool:
        return self._watch is not None

    def listen(self) -> bool:
        """Watch the directory; True if it was quiet until now (changes since were not seen:
        the caller looks once more before it waits for an event)."""
        if self._watch is not None:
            return False
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._watch = self._observer.schedule(self._handler, self._directory, recursive=False)
        except OSError as exc:  # e.g. the user's inotify instances used up meanwhile
            if not self._retry_at:
                get_logger("s2w.relay").warning("file watcher unavailable: the relay polls until it is back",
                                                error=str(exc))
            self._retry_at = time.monotonic() + RETRY_S
            return False  # sleep on the poll interval, which bounds the latency anyway
        self._retry_at = 0.0
        return True

    def quiet(self) -> None:
        """Stop watching (the inotify watch is removed, so the kernel queues nothing)."""
        if self._watch is not None:
            self._observer.unschedule(self._watch)
            self._watch = None

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
