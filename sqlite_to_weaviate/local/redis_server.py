"""Debian's ``redis-server`` on 127.0.0.1 with its own dir, stopped by pid.

Fault tests need two kinds of restart: one that keeps the data (a clean shutdown with a
save) and one that loses everything (SIGKILL and no dump), which is what a crashed or
re-provisioned Redis looks like to the pipeline. Both reuse the same port so clients
reconnect on their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import LocalStackError
from sqlite_to_weaviate.local import process
from sqlite_to_weaviate.local.ports import free_port, port_is_open


def ensure_redis_binary() -> str:
    """Path of ``redis-server``; installs Debian's package with apt when missing and allowed."""
    found = shutil.which("redis-server")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise LocalStackError(
            "redis-server is not installed and cannot be installed here "
            + ("(no apt-get)" if apt is None else "(apt-get needs root)")
            + ". Install it (`apt-get install redis-server`), or run `docker compose up -d`, "
            "or pass --redis-url (S2W_REDIS_URL) for an existing Redis."
        )
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "redis-server"]):
        result = subprocess.run(argv, capture_output=True, text=True,
                                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if result.returncode != 0:
            raise LocalStackError(f"`{' '.join(argv)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    found = shutil.which("redis-server")
    if not found:
        raise LocalStackError("apt-get installed redis-server but it is not on PATH")
    return found


@dataclass
class RedisServer:
    """One local Redis. ``restart(keep_data=False)`` simulates a wipe.

    ``also_bind``: addresses to listen on besides 127.0.0.1 (a test's veth end, never any
    other external address); Redis then refuses unauthenticated clients from them
    (protected mode) unless ``password`` is set. ``extra_args``: more ``redis-server``
    options (``--replicaof``, ...).
    """

    data_dir: Path
    port: int = 0
    password: str | None = field(default=None, repr=False)
    also_bind: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any):  # -> redis.Redis
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **kwargs)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def start(self) -> "RedisServer":
        binary = ensure_redis_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        argv = [binary]
        if self.password:  # in a file, not argv: ps shows argv to every user
            conf = self.data_dir / "auth.conf"
            conf.write_text(f"requirepass {self.password}\nmasterauth {self.password}\n")
            conf.chmod(0o600)
            argv.append(str(conf))
        argv += [
            "--bind", " ".join(("127.0.0.1", *self.also_bind)), "--port", str(self.port),
            "--dir", str(self.data_dir), "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--daemonize", "no", "--logfile", "",
        ]
        argv += list(self.extra_args)
        self._proc = process.spawn(argv, env=dict(os.environ), cwd=self.data_dir, log_path=self.log_path)
        if not process.wait_until(lambda: port_is_open(self.port), timeout=20, interval=0.05, proc=self._proc):
            log_tail = process.tail(self.log_path)
            self.stop()
            raise LocalStackError(f"local redis-server did not start on 127.0.0.1:{self.port}:\n{log_tail}")
        return self

    def stop(self) -> None:
        process.stop(self._proc)
        self._proc = None

    def restart(self, *, keep_data: bool) -> None:
        """Restart on the same port; with ``keep_data=False`` everything in memory is lost."""
        if keep_data:
            self.client().save()
            self.stop()
        else:
            process.kill(self._proc)
            self._proc = None
            (self.data_dir / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def kill(self) -> None:
        process.kill(self._proc)
        self._proc = None

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
