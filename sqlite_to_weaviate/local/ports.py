"""Free loopback ports for servers that must run side by side (parallel tests, demo)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1.

    The port is released before the caller binds it, so another process could take it in
    between; callers that start servers retry on a bind failure instead of trusting this.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free ports (held open together so they cannot repeat)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_ports_with_pairs(singles: int, pairs: int) -> tuple[list[int], list[int]]:
    """``singles`` free ports and ``pairs`` bases ``p`` with ``p + 1`` free too, all distinct.

    Weaviate derives peers' addresses from one port plus one (gossip -> data, raft -> raft
    RPC), so those pairs must be consecutive or the node never finds itself as a peer. Every
    chosen port stays bound until all are chosen: picking them one call at a time let the
    kernel hand the same port out twice (gRPC and raft once collided and the node died).
    """
    held: list[socket.socket] = []

    def hold(port: int) -> bool:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            return False
        held.append(sock)
        return True

    try:
        single_ports = []
        for _ in range(singles):
            hold(0)
            single_ports.append(int(held[-1].getsockname()[1]))
        bases: list[int] = []
        for _ in range(200):
            if len(bases) == pairs:
                break
            hold(0)
            base = int(held[-1].getsockname()[1])
            if base < 65535 and hold(base + 1):
                bases.append(base)
        if len(bases) < pairs:
            raise OSError("could not find two consecutive free ports on 127.0.0.1")
        return single_ports, bases
    finally:
        for sock in held:
            sock.close()
