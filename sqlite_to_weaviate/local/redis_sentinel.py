"""A Redis primary, its replica(s) and real sentinels on 127.0.0.1, stopped by pid.

Debian's ``redis-server`` is also the sentinel (``redis-server <conf> --sentinel`` is what
the ``redis-sentinel`` package links to), so nothing more needs installing. What a
failover test needs, measured here:

* ``repl-diskless-sync-delay 0`` on the primary: Redis 7 otherwise waits 5 s before a
  new replica's first sync, and a primary killed inside that window gets an *empty*
  replica promoted;
* waiting until the replica reports ``master_link_status:up`` and every sentinel knows
  the replica and the other sentinels (2-10 s) before failing anything over;
* a writable config file per sentinel (sentinel rewrites it), ``down-after-milliseconds``
  of 1 s instead of 30 s, so a SIGKILLed primary is replaced in about 1.5-2.5 s.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import LocalStackError
from sqlite_to_weaviate.local import process
from sqlite_to_weaviate.local.ports import free_port, port_is_open
from sqlite_to_weaviate.local.redis_server import RedisServer, ensure_redis_binary


@dataclass
class RedisSentinelSet:
    """``servers[0]`` starts as primary, the others replicate it; ``sentinels`` watch them."""

    root: Path
    replicas: int = 1
    sentinels: int = 3
    service: str = "s2w"
    down_after_ms: int = 1000
    failover_timeout_ms: int = 10_000
    startup_timeout: float = 60.0
    servers: list[RedisServer] = field(init=False, default_factory=list)
    sentinel_ports: list[int] = field(init=False, default_factory=list)
    _sentinel_procs: list[subprocess.Popen[bytes] | None] = field(init=False, default_factory=list, repr=False)

    @property
    def url(self) -> str:
        """The Sentinel URL the tool takes (``redis+sentinel://h:p,h:p/service/0``)."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> "RedisSentinelSet":
        try:
            primary = RedisServer(self.root / "redis0", extra_args=("--repl-diskless-sync-delay", "0")).start()
            self.servers = [primary]
            for i in range(1, self.replicas + 1):
                replica = RedisServer(self.root / f"redis{i}", extra_args=(
                    "--replicaof", "127.0.0.1", str(primary.port), "--repl-diskless-sync-delay", "0"))
                self.servers.append(replica.start())
            for replica in self.servers[1:]:
                self._wait(lambda r=replica: _info(r.port).get("master_link_status") == "up",
                           f"replica on port {replica.port} never synced with the primary")
            self.sentinel_ports = [free_port() for _ in range(self.sentinels)]
            self._sentinel_procs = [None] * self.sentinels
            for i in range(self.sentinels):
                self._spawn_sentinel(i, primary.port)
            self._wait(self._sentinels_see_everyone, "the sentinels did not discover the replica(s) and each other")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn_sentinel(self, i: int, primary_port: int) -> None:
        home = self.root / f"sentinel{i}"
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "sentinel.conf"
        quorum = self.sentinels // 2 + 1
        conf.write_text(
            f"port {self.sentinel_ports[i]}\nbind 127.0.0.1\ndir {home}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {primary_port} {quorum}\n"
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {self.service} 1\n"
        )
        proc = process.spawn([ensure_redis_binary(), str(conf), "--sentinel"], env=dict(os.environ), cwd=home,
                             log_path=home / "sentinel.log")
        self._sentinel_procs[i] = proc
        if not process.wait_until(lambda: port_is_open(self.sentinel_ports[i]), timeout=20, interval=0.05, proc=proc):
            raise LocalStackError(f"sentinel {i} did not start:\n{process.tail(home / 'sentinel.log')}")

    def _sentinels_see_everyone(self) -> bool:
        import redis

        for port in self.sentinel_ports:
            try:
                state = redis.Redis(port=port, socket_timeout=1).sentinel_master(self.service)
            except redis.RedisError:
                return False
            if int(state.get("num-slaves", 0)) < self.replicas or \
                    int(state.get("num-other-sentinels", 0)) < self.sentinels - 1:
                return False
        return True

    def _wait(self, predicate: Any, message: str) -> None:
        if not process.wait_until(predicate, timeout=self.startup_timeout, interval=0.1):
            raise LocalStackError(f"{message} within {self.startup_timeout:.0f}s (logs under {self.root})")

    def primary_port(self) -> int | None:
        """The primary's port according to the first sentinel that answers."""
        import redis

        for port in self.sentinel_ports:
            try:
                address = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(self.service)
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def wait_for_new_primary(self, old_port: int, timeout: float = 60.0) -> RedisServer:
        """Until the sentinels name another primary and it accepts writes."""
        def promoted() -> bool:
            port = self.primary_port()
            return port is not None and port != old_port and _info(port).get("role") == "master"

        if not process.wait_until(promoted, timeout=timeout, interval=0.1):
            raise LocalStackError(f"no failover away from port {old_port} within {timeout:.0f}s")
        return self.server_on(self.primary_port())  # type: ignore[arg-type]

    def stop(self) -> None:
        for proc in self._sentinel_procs:
            process.stop(proc)
        self._sentinel_procs = []
        for server in self.servers:
            server.stop()

    def __enter__(self) -> "RedisSentinelSet":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _info(port: int) -> dict[str, Any]:
    import redis

    try:
        return redis.Redis(port=port, socket_timeout=1).info("replication")
    except redis.RedisError:
        return {}


def wait_synced(replica: RedisServer, timeout: float = 30.0) -> None:
    """Until ``replica`` has caught up with its primary's link (after a restart, say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _info(replica.port).get("master_link_status") == "up":
            return
        time.sleep(0.1)
    raise LocalStackError(f"replica on port {replica.port} not synced after {timeout:.0f}s")
