"""A consistent online copy of the app's database, safe to take while the app writes.

``VACUUM INTO`` reads one snapshot in a single read transaction, so it finishes quickly and
never blocks writers (``Connection.backup`` with a page budget can restart forever under
writes; see docs/known pitfalls). Neither fsyncs the directory, so the copy is written under
a temporary name in the target directory, integrity-checked, fsynced, renamed atomically
and the directory fsynced: a crash leaves either no backup or a complete, checked one. The
file is created with mode 0600 (owner only), whatever the umask: a backup must not be
readable by more users than need it, and the app's own file may well be 0600 itself.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.sqlite_db import BUSY_TIMEOUT_MS, sqlite_path_from_url


BACKUP_MODE = 0o600


class BackupError(S2WError):
    """The backup could not be written or failed its integrity check; nothing was left behind."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    seconds: float


def default_backup_path(source: Path, directory: Path | None = None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return (directory or source.parent) / f"{source.name}.{stamp}.backup"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_database(source: str | Path, destination: str | Path | None = None) -> BackupResult:
    """Copy ``source`` to ``destination`` (a file path, or an existing directory).

    The source is opened read-only: taking a backup changes nothing in the app's file.
    """
    log = get_logger("s2w.backup")
    src = sqlite_path_from_url(source)
    if not src.is_file():
        raise BackupError(f"SQLite database {str(src)!r} does not exist")
    dest = Path(destination) if destination is not None else default_backup_path(src)
    if dest.is_dir():
        dest = default_backup_path(src, dest)
    if dest.exists():
        raise BackupError(f"backup target {str(dest)!r} already exists; choose another path")
    directory = dest.parent
    if not directory.is_dir():
        raise BackupError(f"backup directory {str(directory)!r} does not exist")
    tmp = directory / f".{dest.name}.tmp-{os.getpid()}"
    started = time.monotonic()
    try:
        # The copy holds everything the app stores: owner-only from its first byte. VACUUM INTO
        # writes into an existing empty file, keeping the mode it was created with.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_MODE))
        os.chmod(tmp, BACKUP_MODE)  # whatever the umask
        src_conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True, isolation_level=None,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            src_conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            src_conn.execute("VACUUM INTO ?", (str(tmp),))
        finally:
            src_conn.close()
        check = sqlite3.connect(f"file:{tmp}?mode=ro", uri=True)
        try:
            result = [r[0] for r in check.execute("PRAGMA integrity_check")]
        finally:
            check.close()
        if result != ["ok"]:
            raise BackupError(f"backup of {str(src)!r} failed its integrity check: {'; '.join(result[:5])}")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
        _fsync_dir(directory)
    except (sqlite3.Error, OSError) as exc:
        _remove_quietly(tmp)
        writable = os.access(directory, os.W_OK)
        hint = "" if writable else " (directory is not writable)"
        raise BackupError(f"cannot write a backup into {str(directory)!r}{hint}: {exc}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    size = dest.stat().st_size
    seconds = time.monotonic() - started
    log.info("backup written", path=str(dest), bytes=size, seconds=round(seconds, 3))
    return BackupResult(dest, size, seconds)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
