"""Port choice for the local servers: one Weaviate node needs six ports that never repeat."""

from __future__ import annotations

import socket

from sqlite_to_weaviate.local.ports import free_ports_with_pairs


def test_singles_and_pairs_are_all_distinct_and_pairs_are_consecutive():
    for _ in range(50):
        singles, bases = free_ports_with_pairs(2, 2)
        ports = singles + bases + [b + 1 for b in bases]
        assert len(ports) == len(set(ports)) == 6
        assert all(0 < p <= 65535 for p in ports)


def test_chosen_ports_are_released_for_the_server_to_bind():
    singles, bases = free_ports_with_pairs(1, 1)
    for port in (singles[0], bases[0], bases[0] + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
