"""A real N-node Weaviate cluster on 127.0.0.1: the pinned binary, one data dir per node.

Replication, and what happens when a node dies, can only be tested against several
nodes; this starts them side by side on loopback. What each node needs (measured on
v1.35.2, see docs/scale-out.md):

* ``CLUSTER_IN_LOCALHOST=true``: peers then compute a node's raft RPC port as its raft
  port + 1 and its data port from gossip, so both pairs are consecutive free ports.
* The same ``RAFT_JOIN`` on every node, listing every node, and
  ``RAFT_BOOTSTRAP_EXPECT=N``: the first N entries become the voters. Weaviate matches a
  node to its entry by substring, so node names all have the same length (``...-n0``,
  ``...-n1``; ``-n01`` .. ``-n10`` past ten) and none contains another.
* ``CLUSTER_JOIN`` listing every node's gossip address, *its own included*: memberlist
  can always join itself, so nodes start in any order and any node restarts while others
  are down (listing only the others makes a node exit when none of them answers).
* Names, ports and data dirs stay the same across restarts: raft state is keyed by the
  node name, and every node's ``RAFT_JOIN`` names the others' raft ports.

Bootstrapping needs all N nodes up, so :meth:`WeaviateCluster.start` spawns them all and
then waits; a single node restarted later rejoins on its own data.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import LocalStackError
from sqlite_to_weaviate.local.weaviate_server import ClusterPeers, WeaviateServer, allocate_ports

DEFAULT_NODES = 3


def node_names(count: int, tag: str) -> list[str]:
    """Equal-length names, so that none is a substring of another (raft matches by substring)."""
    width = len(str(count - 1))
    return [f"s2w-{tag}-n{i:0{width}d}" for i in range(count)]


@dataclass
class WeaviateCluster:
    """N local nodes forming one cluster. ``nodes[i].kill()`` / ``.start()`` inject faults."""

    root: Path
    size: int = DEFAULT_NODES
    api_key: str | None = None
    startup_timeout: float = 180.0
    extra_env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    nodes: list[WeaviateServer] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 1:
            raise LocalStackError(f"a cluster needs at least one node, got {self.size!r}")
        names = self._names()
        ports = allocate_ports(len(names))  # chosen together: no port twice across nodes
        peers = ClusterPeers(
            raft_join=",".join(f"{name}:{p['raft']}" for name, p in zip(names, ports)),
            gossip_join=",".join(f"127.0.0.1:{p['gossip']}" for p in ports),
            bootstrap_expect=self.size,
        )
        for i, (name, p) in enumerate(zip(names, ports)):
            node = WeaviateServer(self.root / f"node{i}", api_key=self.api_key, startup_timeout=self.startup_timeout,
                                  host=self.host, hostname=name, peers=peers, extra_env=dict(self.extra_env))
            node._ports = p
            node.http_port, node.grpc_port = p["http"], p["grpc"]
            self.nodes.append(node)

    def _names(self) -> list[str]:
        """The node names, kept in the root dir so a cluster restarted on its data keeps them."""
        marker = self.root / ".cluster-tag"
        if marker.exists():
            tag = marker.read_text().strip()
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            tag = uuid.uuid4().hex[:8]
            marker.write_text(tag)
        return node_names(self.size, tag)

    @property
    def urls(self) -> list[str]:
        """One URL per node, in the form the rest of the tool takes."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """The first node's URL (any node serves the whole cluster)."""
        return self.nodes[0].url

    def start(self) -> "WeaviateCluster":
        """Spawn every node, then wait until each answers ready (raft has elected a leader)."""
        try:
            for node in self.nodes:
                node.spawn()
            for node in self.nodes:
                node.wait_ready(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def live_node_names(self) -> list[str]:
        """Names the cluster reports as members (HEALTHY or not), asked through a live node."""
        for node in self.nodes:
            if node.pid is None:
                continue
            try:
                nodes = _get_json(f"http://{node.host}:{node.http_port}/v1/nodes")["nodes"]
            except (OSError, ValueError, KeyError):
                continue
            return sorted(n["name"] for n in nodes)
        return []

    def __enter__(self) -> "WeaviateCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _get_json(url: str, timeout: float = 5.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code} from {url}") from None
