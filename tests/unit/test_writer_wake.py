"""The relay's file watcher on a real directory (inotify): it wakes on commits, and rests.

The relay quiets the watcher while it does not sleep on it (busy, or waiting on acks) and
listens again before it does; ``listen`` must say it was quiet, so the relay looks once
more for a commit that raised no event.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlite_to_weaviate.writer.wake import DatabaseWatcher


def _commit(path: Path, value: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        conn.execute("INSERT INTO t VALUES (?)", (value,))
    finally:
        conn.close()


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, threading.Event, DatabaseWatcher]]:
    """A WAL database with one commit, and a started watcher whose event is clear."""
    database = tmp_path / "app.db"
    _commit(database, 0)
    event = threading.Event()
    watcher = DatabaseWatcher(database, event).start()
    event.clear()
    try:
        yield database, event, watcher
    finally:
        watcher.stop()


def test_the_watcher_wakes_on_a_commit_rests_when_quiet_and_says_so_when_it_listens_again(watched) -> None:
    database, event, watcher = watched
    assert watcher.listening
    assert watcher.listen() is False  # already listening: nothing was missed
    _commit(database, 1)
    assert event.wait(5.0), "a commit while listening sets the event"

    watcher.quiet()
    assert not watcher.listening
    watcher.quiet()  # twice is harmless
    event.clear()
    _commit(database, 2)
    assert not event.wait(0.5), "a quiet watcher raises nothing"

    assert watcher.listen() is True  # it was quiet: the caller must look once more
    assert watcher.listening
    event.clear()
    _commit(database, 3)
    assert event.wait(5.0), "listening again, a commit sets the event"


def test_a_file_beside_the_database_does_not_wake_the_relay(watched, tmp_path: Path) -> None:
    _, event, _ = watched
    (tmp_path / "other.txt").write_text("not the database")
    assert not event.wait(0.5)


def test_a_watcher_that_cannot_listen_again_leaves_the_relay_polling_then_recovers(watched, monkeypatch) -> None:
    """inotify instances can run out while the watcher rests: listen() then says False (the
    relay sleeps on its poll interval instead of spinning) until watching works again."""
    database, event, watcher = watched
    watcher.quiet()
    real_schedule = watcher._observer.schedule

    def no_instances_left(*args, **kwargs):
        raise OSError(24, "inotify instance limit reached")

    monkeypatch.setattr(watcher._observer, "schedule", no_instances_left)
    assert watcher.listen() is False
    assert watcher.listen() is False  # still failing: still polling, no spin
    assert not watcher.listening
    monkeypatch.setattr(watcher._observer, "schedule", real_schedule)
    assert watcher.listen() is False  # the next try waits RETRY_S (each may cost an inotify instance)
    watcher._retry_at = 0.0
    assert watcher.listen() is True  # back: the relay looks once more, then sleeps on events
    event.clear()
    _commit(database, 1)
    assert event.wait(5.0)
