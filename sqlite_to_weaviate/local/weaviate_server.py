"""A real Weaviate node on 127.0.0.1 with its own data dir and ports.

Several nodes can run side by side (parallel tests): each gets six free ports (HTTP,
gRPC, gossip, data, raft, raft RPC) and a unique cluster hostname. Auto-schema is off so
collections are only ever created explicitly from the mapping; telemetry is off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import LocalStackError
from sqlite_to_weaviate.local import process
from sqlite_to_weaviate.local.ports import free_ports_with_pairs
from sqlite_to_weaviate.local.weaviate_build import WEAVIATE_VERSION, ensure_weaviate_binary


@dataclass
class WeaviateServer:
    """One local Weaviate node. Use as a context manager or call start()/stop()."""

    data_dir: Path
    api_key: str | None = None
    version: str = WEAVIATE_VERSION
    http_port: int = 0
    grpc_port: int = 0
    startup_timeout: float = 120.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _ports: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        """The HTTP URL in the form the rest of the tool takes (``grpc_port`` as a query)."""
        return f"http://127.0.0.1:{self.http_port}?grpc_port={self.grpc_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weaviate.log"

    def start(self) -> "WeaviateServer":
        """Start the node; a first start whose chosen ports were taken meanwhile tries new ones.

        Free ports are only free when chosen: another process may bind one before Weaviate
        does. Only a first start re-chooses; a restart keeps its ports (clients hold the URL).
        """
        first_start = not self._ports
        for attempt in range(3):
            try:
                return self._start_once()
            except LocalStackError as exc:
                if not (first_start and "address already in use" in str(exc)) or attempt == 2:
                    raise
                self._ports = {}
                self.http_port, self.grpc_port = self._requested
        raise AssertionError("unreachable")

    def __post_init__(self) -> None:
        self._requested = (self.http_port, self.grpc_port)

    def _start_once(self) -> "WeaviateServer":
        binary = ensure_weaviate_binary(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._ports:
            (http, grpc), (gossip, raft) = free_ports_with_pairs(2, 2)
            self._ports = dict(http=self.http_port or http, grpc=self.grpc_port or grpc,
                               gossip=gossip, data=gossip + 1, raft=raft, raft_rpc=raft + 1)
        self.http_port, self.grpc_port = self._ports["http"], self._ports["grpc"]
        hostname = f"s2w-{uuid.uuid4().hex[:8]}" if not (self.data_dir / ".hostname").exists() \
            else (self.data_dir / ".hostname").read_text().strip()
        (self.data_dir / ".hostname").write_text(hostname)  # raft state is tied to the node name
        env = self._environment(hostname)
        self._proc = process.spawn(
            [str(binary), "--host", "127.0.0.1", "--port", str(self.http_port), "--scheme", "http"],
            env=env, cwd=self.data_dir, log_path=self.log_path,
        )
        if not process.wait_until(self._ready, timeout=self.startup_timeout, interval=0.25, proc=self._proc):
            log_tail = process.tail(self.log_path)
            self.stop()
            raise LocalStackError(
                f"local Weaviate did not become ready on 127.0.0.1:{self.http_port} within "
                f"{self.startup_timeout:.0f}s. Log tail ({self.log_path}):\n{log_tail}"
            )
        return self

    def _environment(self, hostname: str) -> dict[str, str]:
        p = self._ports
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHENTICATION_", "CLUSTER_", "RAFT_"))}
        env.update(
            PERSISTENCE_DATA_PATH=str(self.data_dir / "data"),
            GRPC_PORT=str(p["grpc"]),
            CLUSTER_HOSTNAME=hostname,
            CLUSTER_BIND_ADDR="127.0.0.1",
            CLUSTER_IN_LOCALHOST="true",
            CLUSTER_GOSSIP_BIND_PORT=str(p["gossip"]),
            CLUSTER_DATA_BIND_PORT=str(p["data"]),
            RAFT_PORT=str(p["raft"]),
            RAFT_INTERNAL_RPC_PORT=str(p["raft_rpc"]),
            RAFT_BOOTSTRAP_EXPECT="1",
            RAFT_JOIN=f"{hostname}:{p['raft']}",
            DISABLE_TELEMETRY="true",
            GO_PROFILING_DISABLE="true",
            AUTOSCHEMA_ENABLED="false",
            DEFAULT_VECTORIZER_MODULE="none",
            QUERY_DEFAULTS_LIMIT="25",
            LOG_LEVEL="warning",
            PROMETHEUS_MONITORING_ENABLED="false",
        )
        if self.api_key:
            env.update(
                AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED="false",
                AUTHENTICATION_APIKEY_ENABLED="true",
                AUTHENTICATION_APIKEY_ALLOWED_KEYS=self.api_key,
                AUTHENTICATION_APIKEY_USERS="s2w-admin",
            )
        else:
            env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] = "true"
        return env

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}/v1/.well-known/ready", timeout=1
            ) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        process.stop(self._proc, timeout=30)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault-injection tests)."""
        process.kill(self._proc)
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same ports and data dir (data is kept)."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop and delete the data dir."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "WeaviateServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
