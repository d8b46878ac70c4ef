"""The local stack starts real servers side by side, restarts them, and guards its keys."""

from __future__ import annotations

import pytest
import redis

from sqlite_to_weaviate.local.weaviate_server import WeaviateServer
from sqlite_to_weaviate.weaviate_adapter import connect_weaviate


def test_session_servers_answer(weaviate_client, redis_url):
    assert weaviate_client.is_ready()
    assert weaviate_client.get_meta()["version"].startswith("1.")
    assert redis.Redis.from_url(redis_url).ping()


def test_autoschema_is_off(weaviate_client, collection_prefix):
    """Writing to a collection that was never created must fail instead of guessing types."""
    import weaviate.exceptions

    name = f"{collection_prefix}Nope"
    with pytest.raises(weaviate.exceptions.WeaviateBaseError) as refused:
        weaviate_client.collections.use(name).data.insert({"a": None, "b": 1})
    assert f'class "{name}" not found in schema' in str(refused.value), refused.value  # 422, nothing guessed
    assert not weaviate_client.collections.exists(name)


def test_redis_restart_keeps_or_wipes(redis_server_factory):
    server = redis_server_factory()
    client = redis.Redis.from_url(server.url)
    client.set("k", "v")
    server.restart(keep_data=True)
    assert client.get("k") == b"v"
    server.restart(keep_data=False)
    assert client.get("k") is None
    assert client.ping()


def test_second_weaviate_side_by_side_with_api_key(weaviate_server_factory, weaviate_url):
    server: WeaviateServer = weaviate_server_factory(api_key="test-key-123")
    assert server.url != weaviate_url
    assert "test-key-123" not in repr(server.url)
    client = connect_weaviate(server.url, api_key="test-key-123")
    try:
        assert client.is_ready()
        assert client.collections.list_all() == {}
    finally:
        client.close()
    server.restart()
    client = connect_weaviate(server.url, api_key="test-key-123")
    try:
        assert client.is_ready()
    finally:
        client.close()


def test_first_start_whose_port_was_taken_meanwhile_tries_new_ports(tmp_path):
    """A free port is only free when chosen: if something binds it before Weaviate does, the
    node dies with "address already in use" and the first start chooses again."""
    import socket

    from sqlite_to_weaviate.local.weaviate_server import allocate_ports

    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    calls = []

    def allocate(nodes):
        chosen = allocate_ports(nodes)
        calls.append(chosen)
        # The race (another process binds a port between our choice and Weaviate's bind) cannot
        # be made to happen on demand, so the first choice hands out a port a real socket already
        # holds; the real Weaviate then really fails to bind it and the start must choose again.
        if len(calls) == 1:
            chosen[0]["grpc"] = taken
        return chosen

    server = WeaviateServer(tmp_path / "w", allocate=allocate)
    try:
        server.start()
        assert len(calls) == 2 and server.grpc_port != taken
        client = connect_weaviate(server.url)
        try:
            assert client.is_ready()
        finally:
            client.close()
    finally:
        server.destroy()
        squatter.close()
