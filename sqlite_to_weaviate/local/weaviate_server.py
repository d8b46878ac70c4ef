"""A real Weaviate node on 127.0.0.1 with its own data dir and ports.

Several nodes can run side by side (parallel tests): each gets six free ports (HTTP,
gRPC, gossip, data, raft, raft RPC) and a unique cluster hostname. Auto-schema is off so
collections are only ever created explicitly from the mapping; telemetry is off.

A node is a one-node cluster unless it is given :class:`ClusterPeers` (see
:mod:`sqlite_to_weaviate.local.weaviate_cluster`, which starts N of them together).
Its HTTP API binds ``host`` (127.0.0.1 by default; a test may give it an address it
created, e.g. one end of a veth pair). Weaviate's two gRPC servers, the client one and the
cluster-internal one, listen on every interface whatever ``host`` says (v1.35.2:
``net.Listen("tcp", ":port")``); gossip and raft bind ``CLUSTER_BIND_ADDR`` = 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlite_to_weaviate.errors import LocalStackError
from sqlite_to_weaviate.local import process
from sqlite_to_weaviate.local.ports import free_ports_with_pairs
from sqlite_to_weaviate.local.weaviate_build import WEAVIATE_VERSION, ensure_weaviate_binary


def allocate_ports(nodes: int = 1) -> list[dict[str, int]]:
    """Six free ports for each of ``nodes`` nodes, all chosen together (no two the same);
    gossip/data and raft/raft-RPC are consecutive pairs (a peer computes a node's raft RPC
    port as its raft port + 1 on loopback)."""
    singles, bases = free_ports_with_pairs(2 * nodes, 2 * nodes)
    return [dict(http=singles[2 * i], grpc=singles[2 * i + 1], gossip=bases[2 * i], data=bases[2 * i] + 1,
                 raft=bases[2 * i + 1], raft_rpc=bases[2 * i + 1] + 1) for i in range(nodes)]


@dataclass(frozen=True)
class ClusterPeers:
    """How one node finds the others: the same raft member list and gossip seeds on every node."""

    raft_join: str  # "name0:raftport0,name1:raftport1,..." (each node's own entry included)
    gossip_join: str  # "127.0.0.1:gossip0,127.0.0.1:gossip1,..." (its own included: any start order works)
    bootstrap_expect: int


@dataclass
class WeaviateServer:
    """One local Weaviate node. Use as a context manager or call start()/stop()."""

    data_dir: Path
    api_key: str | None = None
    version: str = WEAVIATE_VERSION
    http_port: int = 0
    grpc_port: int = 0
    startup_timeout: float = 120.0
    host: str = "127.0.0.1"
    hostname: str | None = None
    peers: ClusterPeers | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    allocate: Callable[[int], list[dict[str, int]]] = field(default=allocate_ports, repr=False)
    """How the node's ports are found (``allocate_ports``); a test hands in one that loses a port race."""
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _ports: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        """The HTTP URL in the form the rest of the tool takes (``grpc_port`` as a query)."""
        return f"http://{self.host}:{self.http_port}?grpc_port={self.grpc_port}"

    @property
    def ports(self) -> dict[str, int]:
        """http, grpc, gossip, data, raft, raft_rpc (allocated on first use, kept across restarts)."""
        if not self._ports:
            self._ports = self.allocate(1)[0]
            if self.http_port:
                self._ports["http"] = self.http_port
            if self.grpc_port:
                self._ports["grpc"] = self.grpc_port
        self.http_port, self.grpc_port = self._ports["http"], self._ports["grpc"]
        return self._ports

    @property
    def node_name(self) -> str:
        """The cluster hostname: raft state is tied to it, so it is kept with the data dir."""
        marker = self.data_dir / ".hostname"
        if self.hostname is None:
            self.hostname = marker.read_text().strip() if marker.exists() else f"s2w-{uuid.uuid4().hex[:8]}"
        return self.hostname

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weaviate.log"

    def start(self) -> "WeaviateServer":
        """Start the node; a first start whose chosen ports were taken meanwhile tries new ones.

        Free ports are only free when chosen: another process may bind one before Weaviate
        does. Only a first start re-chooses; a restart keeps its ports (clients hold the URL),
        and so does a cluster's node (its peers were told them).
        """
        first_start = not self._ports
        for attempt in range(3):
            try:
                self.spawn()
                self.wait_ready()
                return self
            except LocalStackError as exc:
                if not (first_start and "address already in use" in str(exc)) or attempt == 2:
                    raise
                self._ports = {}
                self.http_port, self.grpc_port = self._requested
        raise AssertionError("unreachable")

    def __post_init__(self) -> None:
        self._requested = (self.http_port, self.grpc_port)

    def spawn(self) -> "WeaviateServer":
        """Start the process without waiting (a cluster starts every node before any is ready)."""
        binary = ensure_weaviate_binary(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports, hostname = self.ports, self.node_name
        (self.data_dir / ".hostname").write_text(hostname)
        self._proc = process.spawn(
            [str(binary), "--host", self.host, "--port", str(ports["http"]), "--scheme", "http"],
            env=self._environment(hostname), cwd=self.data_dir, log_path=self.log_path,
        )
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Until ``/v1/.well-known/ready`` answers 200; stops the node and raises with its log tail otherwise."""
        timeout = self.startup_timeout if timeout is None else timeout
        if not process.wait_until(self.is_ready, timeout=timeout, interval=0.25, proc=self._proc):
            log_tail = process.tail(self.log_path)
            self.stop()
            raise LocalStackError(
                f"local Weaviate did not become ready on {self.host}:{self.http_port} within "
                f"{timeout:.0f}s. Log tail ({self.log_path}):\n{log_tail}"
            )

    def _environment(self, hostname: str) -> dict[str, str]:
        p = self.ports
        peers = self.peers or ClusterPeers(f"{hostname}:{p['raft']}", "", 1)
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
            RAFT_BOOTSTRAP_EXPECT=str(peers.bootstrap_expect),
            RAFT_JOIN=peers.raft_join,
            DISABLE_TELEMETRY="true",
            GO_PROFILING_DISABLE="true",
            AUTOSCHEMA_ENABLED="false",
            DEFAULT_VECTORIZER_MODULE="none",
            QUERY_DEFAULTS_LIMIT="25",
            LOG_LEVEL="warning",
            PROMETHEUS_MONITORING_ENABLED="false",
        )
        if peers.gossip_join:
            env["CLUSTER_JOIN"] = peers.gossip_join
        if self.api_key:
            env.update(
                AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED="false",
                AUTHENTICATION_APIKEY_ENABLED="true",
                AUTHENTICATION_APIKEY_ALLOWED_KEYS=self.api_key,
                AUTHENTICATION_APIKEY_USERS="s2w-admin",
            )
        else:
            env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] = "true"
        env.update(self.extra_env)
        return env

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://{self.host}:{self.http_port}/v1/.well-known/ready", timeout=1
            ) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        process.stop(self._proc, timeout=30)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault-injection tests); ports and data dir are kept."""
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
