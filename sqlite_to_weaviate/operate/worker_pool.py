"""A supervised pool of ``sqlite-to-weaviate worker`` subprocesses.

``count`` workers take live jobs first and history when no live job waits; ``live_reserve``
more take only live jobs. Without the reserve, a live job that arrives while every worker
is inside a history batch waits for one to finish, and each live job then occupies a
worker that history could have used; the reserve worker sits in Redis's blocking pop and
takes it at once (invariant 11). Under live overload the others help, live first.

Workers are separate processes (as in production: the gRPC client must be created after
any fork, and a crashed worker must not take the relay down). The pool restarts workers
that exit unexpectedly and stops them with SIGTERM, which RQ treats as a warm shutdown:
the current job finishes and acknowledges; anything not acknowledged is re-sent by the
relay from the durable outbox. Settings travel through the environment, never argv, so
the API key and the job secret do not show up in ``ps``.
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
from sqlite_to_weaviate.writer.job_secret import FILE_ENV_VAR as JOB_SECRET_FILE_ENV

_PR_SET_PDEATHSIG = 1


def worker_cli_env(settings: Settings, log_level: str = "WARNING") -> dict[str, str]:
    """The environment a ``worker`` subprocess reads its settings from: this process's,
    without any ``S2W_*`` setting, settings file or job secret file of its own, plus
    ``settings`` (the job secret the relay signs with, when it is given explicitly; unset,
    the worker reads the one stored in the database beside it, exactly as the relay does)."""
    stale = Settings.environ_names() | {"S2W_CONFIG", JOB_SECRET_FILE_ENV}
    env = {name: value for name, value in os.environ.items() if name not in stale}
    env.update(settings.to_environ())
    env["S2W_LOG_LEVEL"] = log_level
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
main(["worker", *sys.argv[2:]], prog_name="sqlite-to-weaviate")
"""


class WorkerPool:
    """``count`` worker processes (plus ``live_reserve`` live-only ones) kept alive by
    :meth:`supervise` until :meth:`stop`."""

    def __init__(self, settings: Settings, count: int, *, log_dir: Path | None = None,
                 log_level: str = "WARNING", live_reserve: int = 0) -> None:
        if count < 1 or live_reserve < 0:
            raise ValueError(f"a worker pool needs at least one worker and no negative reserve "
                             f"(count={count}, live_reserve={live_reserve})")
        self.settings = settings
        self.count = count + live_reserve
        self.live_reserve = live_reserve
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
        extra = ["--live-only"] if index >= self.count - self.live_reserve else []
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT, str(os.getpid()), *extra],
            env=worker_cli_env(self.settings, self.log_level),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def start(self) -> "WorkerPool":
        with self._lock:
            self.procs = [self._spawn(i) for i in range(self.count)]
        self.log.info("workers started", count=self.count, live_only=self.live_reserve,
                      pids=[p.pid for p in self.procs])
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
