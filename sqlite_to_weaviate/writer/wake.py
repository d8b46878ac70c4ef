"""Wake the relay when the database changes: watchdog events as hints, a slow poll as fallback.

In WAL mode a commit modifies ``app.db-wal``; ``-wal``/``-shm`` come and go with
connections, so the whole directory is watched and events for the database's files set
an event. Events coalesce and may arrive early, so the relay always drains until empty
and never relies on an event for correctness: the poll interval bounds the latency when
an event is missed.
"""

from __future__ import annotations

import threading
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class _Handler(FileSystemEventHandler):
    def __init__(self, database: Path, event: threading.Event) -> None:
        self._prefix = str(database)
        self._event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = event.src_path if isinstance(event.src_path, str) else event.src_path.decode()
        if path.startswith(self._prefix):
            self._event.set()


class DatabaseWatcher:
    """Sets ``event`` whenever the database file or its -wal/-journal changes."""

    def __init__(self, database: Path, event: threading.Event) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(_Handler(database.resolve(), event), str(database.resolve().parent), recursive=False)

    def start(self) -> "DatabaseWatcher":
        self._observer.start()
        return self

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
