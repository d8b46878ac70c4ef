"""A supervised pool of ``sqlite-to-weaviate worker`` subprocesses.

Workers are separate processes (as in production: the gRPC client must be created after
any fork, and a crashed worker must not take the relay down). The pool restarts workers
that exit unexpectedly and stops them with SIGTERM, which RQ treats as a warm shutdown:
the current job finishes and acknowledges; anything not acknowledged is re-sent by the
relay from the durable outbox. Settings travel through the environment, never argv, so
the API key does not show up in ``ps``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.settings import Settings

_PR_SET_PDEATHSIG = 1


def worker_cli_env(settings: Settings, log_level: str = "WARNING") -> dict[str, str]:
    """The environment a ``worker`` subprocess reads its settings from."""
    env = dict(os.environ)
    env.update(
        S2W_WEAVIATE_URL=settings.weaviate_url,
        S2W_REDIS_URL=settings.redis_url, S2W_NAMESPACE=settings.namespace,
        S2W_COLLECTION_PREFIX=settings.collection_prefix, S2W_LEASE_SECONDS=str(settings.lease_seconds),
        S2W_JOB_TIMEOUT=str(settings.job_timeout), S2W_RETRY_DELAY=str(settings.retry_delay),
        S2W_BACKOFF_MAX=str(settings.backoff_max), S2W_PARTITIONS=str(settings.partitions),
        S2W_BATCH_SIZE=str(settings.batch_size), S2W_POLL_INTERVAL=str(settings.poll_interval),
        S2W_MAX_RETRIES=str(settings.max_retries), S2W_LOG_LEVEL=log_level,
        S2W_REPLICATION_FACTOR=str(settings.replication_factor), S2W_WRITE_CONSISTENCY=settings.write_consistency,
        S2W_VERIFY_CONSISTENCY=settings.verify_consistency,
    )
    env.pop("S2W_CONFIG", None)
    if settings.sqlite_path is not None:
        env["S2W_SQLITE_URL"] = str(settings.sqlite_path)
    else:
        env.pop("S2W_SQLITE_URL", None)
    if settings.mapping_file:
        env["S2W_MAPPING_FILE"] = str(settings.mapping_file)
    if settings.weaviate_api_key:
        env["S2W_WEAVIATE_API_KEY"] = settings.weaviate_api_key.reveal()
    else:
        env.pop("S2W_WEAVIATE_API_KEY", None)
    return env


# Runs in the child after exec (a preexec_fn is unsafe in a threaded parent): on Linux the worker
# gets SIGTERM — a warm shutdown — if the supervisor dies, even by SIGKILL, so no orphan keeps
# running; then it is the ordinary ``sqlite-to-weaviate worker`` command.
_WORKER_BOOT = f"""
import ctypes, os, signal, sys
try:
    ctypes.CDLL("libc.so.6").prctl({_PR_SET_PDEATHSIG}, signal.SIGTERM)
    if os.getppid() != int(sys.argv[1]):
        sys.exit(0)  # the supervisor is already gone
except (OSError, AttributeError):
    pass
from sqlite_to_weaviate.cli import main
main(["worker"], prog_name="sqlite-to-weaviate")
"""


class WorkerPool:
    """``count`` worker processes kept alive by :meth:`supervise` until :meth:`stop`."""

    def __init__(self, settings: Settings, count: int, *, log_dir: Path | None = None,
                 log_level: str = "WARNING") -> None:
        self.settings = settings
        self.count = count
        self.log_dir = log_dir
        self.log_level = log_level
        self.procs: list[subprocess.Popen] = []
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._files: list[IO[bytes]] = []
        self.log = get_logger("s2w.workers")

    def _spawn(self, index: int) -> subprocess.Popen:
        out: int | IO[bytes] = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            fh = open(self.log_dir / f"worker{index}.log", "ab")  # noqa: SIM115 - closed in stop()
            self._files.append(fh)
            out = fh
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT, str(os.getpid())], env=worker_cli_env(self.settings, self.log_level),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def start(self) -> "WorkerPool":
        with self._lock:
            self.procs = [self._spawn(i) for i in range(self.count)]
        self.log.info("workers started", count=self.count, pids=[p.pid for p in self.procs])
        return self

    @property
    def alive(self) -> int:
        return sum(1 for p in self.procs if p.poll() is None)

    def check(self) -> int:
        """Restart workers that died; returns how many were restarted."""
        restarted = 0
        with self._lock:
            if self._stopping.is_set():
                return 0
            for i, proc in enumerate(self.procs):
                code = proc.poll()
                if code is not None:
                    self.log.warning("worker exited; restarting", pid=proc.pid, exit_code=code)
                    self.procs[i] = self._spawn(i)
                    restarted += 1
        self.restarts += restarted
        return restarted

    def supervise(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Loop for a supervisor thread: restart dead workers until ``stop`` is set."""
        while not stop.wait(interval) and not self._stopping.is_set():
            self.check()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (RQ warm shutdown: the current job finishes), SIGKILL after ``timeout``."""
        self._stopping.set()
        with self._lock:
            for proc in self.procs:
                if proc.poll() is None:
                    try:
                        proc.send_signal(signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + timeout
            for proc in self.procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.log.warning("worker did not stop in time; killing", pid=proc.pid)
                    proc.kill()
                    proc.wait()
            for fh in self._files:
                fh.close()
            self._files.clear()
        self.log.info("workers stopped")
