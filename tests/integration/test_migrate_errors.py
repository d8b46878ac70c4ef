"""Bad input and unreachable services: one clear error line, exit code 3, nothing written anywhere."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from examples.chat_app.seed import build_sample_database
from sqlite_to_weaviate.local.ports import free_ports
from sqlite_to_weaviate.cli.operate import migrate_cmd
from sqlite_to_weaviate.operate.rollback import namespace_keys


@pytest.fixture
def app_db(tmp_path):
    db = tmp_path / "chat.db"
    build_sample_database(db, conversations=3)
    return db


def run(args: list[str]):
    return CliRunner().invoke(migrate_cmd, args)


def assert_one_clear_error(result, *fragments: str) -> None:
    assert result.exit_code == 3, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


def assert_nothing_written(db, before: bytes, client, prefix: str, redis_client, namespace: str) -> None:
    assert db.read_bytes() == before
    assert not list(db.parent.glob("*.backup")) and not list(db.parent.glob("*.lock"))
    assert [n for n in client.collections.list_all(simple=True) if n.startswith(prefix)] == []
    assert namespace_keys(redis_client, namespace) == []


def base(db, weaviate_url, redis_url, namespace, prefix) -> list[str]:
    return ["--sqlite-url", str(db), "--weaviate-url", weaviate_url, "--redis-url", redis_url,
            "--namespace", namespace, "--collection-prefix", prefix]


@pytest.mark.parametrize("flag, value, fragment", [
    ("--weaviate-url", "ftp://127.0.0.1:8080", "scheme must be http or https"),
    ("--weaviate-url", "http://127.0.0.1:8080?grpc_port=abc", "grpc_port must be a port number"),
    ("--redis-url", "127.0.0.1:6379", "redis_url"),
    ("--sqlite-url", "sqlite://relative.db", "expected sqlite:///"),
])
def test_invalid_urls(flag, value, fragment, app_db, weaviate_url, redis_url, redis_namespace, collection_prefix,
                      weaviate_client, redis_client):
    before = app_db.read_bytes()
    args = base(app_db, weaviate_url, redis_url, redis_namespace, collection_prefix)
    args[args.index(flag) + 1] = value
    assert_one_clear_error(run(args), fragment)
    assert_nothing_written(app_db, before, weaviate_client, collection_prefix, redis_client, redis_namespace)


def test_missing_database_file(tmp_path, weaviate_url, redis_url, redis_namespace, collection_prefix):
    missing = tmp_path / "nope.db"
    assert_one_clear_error(run(base(missing, weaviate_url, redis_url, redis_namespace, collection_prefix)),
                           "does not exist", "nope.db")
    assert not missing.exists()


def test_wrong_api_key(app_db, weaviate_server_factory, redis_url, redis_namespace, collection_prefix, redis_client):
    server = weaviate_server_factory(api_key="k")
    before = app_db.read_bytes()
    for key_args in (["--api-key", "wrong"], []):
        result = run(base(app_db, server.url, redis_url, redis_namespace, collection_prefix) + key_args)
        assert_one_clear_error(result, "rejected the credentials", "API key")
        assert "wrong" not in result.output
    from sqlite_to_weaviate.weaviate_adapter import connect_weaviate

    client = connect_weaviate(server.url, "k")
    try:
        assert_nothing_written(app_db, before, client, collection_prefix, redis_client, redis_namespace)
    finally:
        client.close()


def test_unreachable_servers(app_db, weaviate_url, redis_url, redis_namespace, collection_prefix, weaviate_client,
                             redis_client):
    before = app_db.read_bytes()
    http, grpc, redis_port = free_ports(3)
    result = run(base(app_db, f"http://127.0.0.1:{http}?grpc_port={grpc}", redis_url, redis_namespace,
                      collection_prefix))
    assert_one_clear_error(result, "cannot reach Weaviate", f"127.0.0.1:{http}")
    result = run(base(app_db, weaviate_url, f"redis://127.0.0.1:{redis_port}/0", redis_namespace, collection_prefix))
    assert_one_clear_error(result, "cannot reach Redis", f"127.0.0.1:{redis_port}")
    assert_nothing_written(app_db, before, weaviate_client, collection_prefix, redis_client, redis_namespace)


def test_refuses_while_a_relay_serves_the_database(app_db, weaviate_url, redis_url, redis_namespace,
                                                   collection_prefix, weaviate_client, redis_client):
    from sqlite_to_weaviate.writer.relay_lock import RelayLock

    before = app_db.read_bytes()
    lock = RelayLock(app_db)
    lock.acquire()  # as a running `run` or `relay` would
    try:
        result = run(base(app_db, weaviate_url, redis_url, redis_namespace, collection_prefix))
    finally:
        lock.release()
    assert_one_clear_error(result, "another relay is already running", "stop `run`/`relay`")
    assert app_db.read_bytes() == before
    assert [n for n in weaviate_client.collections.list_all(simple=True) if n.startswith(collection_prefix)] == []
    assert namespace_keys(redis_client, redis_namespace) == []
