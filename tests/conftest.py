"""Session-wide real servers and per-test isolation.

One Weaviate and one Redis serve the whole session (starting Weaviate costs seconds);
tests isolate themselves by a unique collection prefix and Redis namespace. Tests that
inject faults into a server (restart, kill) ask for their own with the factories.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import pytest

from sqlite_to_weaviate.local.redis_server import RedisServer
from sqlite_to_weaviate.local.stack import LocalStack
from sqlite_to_weaviate.local.weaviate_cluster import WeaviateCluster
from sqlite_to_weaviate.local.weaviate_server import WeaviateServer
from sqlite_to_weaviate.weaviate_adapter import connect_weaviate


TESTS = Path(__file__).resolve().parent
# Everything under these directories talks to real servers or real processes (markers by
# directory, so a new test file cannot forget its marker).
INTEGRATION_DIRS = {"integration", "security", "soak"}
SERVER_FIXTURES = {"local_stack", "weaviate_server_factory", "redis_server_factory"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``-m integration`` / ``-m "not integration"`` select by directory (or a server fixture
    anywhere); ``slow`` stays explicit (``@pytest.mark.slow``; the default run is ``-m "not slow"``)."""
    for item in items:
        top = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        if top in INTEGRATION_DIRS or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("stack")).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def weaviate_url(local_stack: LocalStack) -> str:
    return local_stack.weaviate.url


@pytest.fixture(scope="session")
def redis_url(local_stack: LocalStack) -> str:
    return local_stack.redis.url


@pytest.fixture
def collection_prefix() -> str:
    """A unique collection-name prefix per test (Weaviate names start upper-case)."""
    return "T" + uuid.uuid4().hex[:8]


@pytest.fixture
def redis_namespace() -> str:
    """A unique Redis key / queue namespace per test."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def weaviate_client(weaviate_url: str, collection_prefix: str):
    client = connect_weaviate(weaviate_url)
    try:
        yield client
    finally:
        try:
            for alias in list(client.alias.list_all()):  # aliases first: they would dangle otherwise
                if alias.startswith(collection_prefix):
                    client.alias.delete(alias_name=alias)
            for name in list(client.collections.list_all(simple=True)):
                if name.startswith(collection_prefix):
                    client.collections.delete(name)
        finally:
            client.close()


@pytest.fixture
def redis_client(redis_url: str, redis_namespace: str):
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = list(client.scan_iter(match=f"*{redis_namespace}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def weaviate_server_factory(tmp_path: Path) -> Iterator:
    """Private Weaviate nodes for tests that stop/kill/restart the server."""
    servers: list[WeaviateServer] = []

    def make(**kwargs) -> WeaviateServer:
        server = WeaviateServer(tmp_path / f"weaviate{len(servers)}", **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator:
    """Private Redis servers for tests that restart or wipe Redis."""
    servers: list[RedisServer] = []

    def make(**options: Any) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(servers)}", **options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def weaviate_cluster_factory(tmp_path: Path) -> Iterator:
    """Private N-node Weaviate clusters (default 3) on 127.0.0.1, every node stopped by pid after the test."""
    clusters: list[WeaviateCluster] = []

    def make(size: int = 3, **kwargs) -> WeaviateCluster:
        cluster = WeaviateCluster(tmp_path / f"cluster{len(clusters)}", size=size, **kwargs)
        clusters.append(cluster)
        return cluster.start()

    yield make
    for cluster in clusters:
        cluster.stop()
