"""Scale-out pieces that are pure functions: Sentinel URLs, Redis identity, cluster error
classification, replication settings, collection replication config, node names, tickets."""

from __future__ import annotations

import itertools
import os

import pytest
from click.testing import CliRunner

from sqlite_to_weaviate.cli import main as cli
from sqlite_to_weaviate.cli.options import load_settings
from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.redaction import redact_url
from sqlite_to_weaviate.local.weaviate_cluster import node_names
from sqlite_to_weaviate.mapping.collections import check_replication_factor, collection_config, replication_config
from sqlite_to_weaviate.redis_adapter import (
    SentinelURL, connect_redis, parse_sentinel_url, validate_redis_url,
)
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.writer.payload import JobTicket
from sqlite_to_weaviate.writer.redis_identity import FailoverWatch, RedisIdentity, describe_change, parse_identity
from sqlite_to_weaviate.writer.weaviate_errors import object_error_is_transient as is_transient

# ----------------------------------------------------------------- Sentinel URLs


def test_sentinel_url_full_form():
    spec = parse_sentinel_url("redis+sentinel://app:s3cret@10.0.0.1:26380,10.0.0.2,[::1]:26381/mymaster/2"
                              "?sentinel_password=sp&sentinel_username=su")
    assert spec == SentinelURL(sentinels=(("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 26381)),
                               service="mymaster", db=2, username="app", password="s3cret",
                               sentinel_username="su", sentinel_password="sp", tls=False)
    assert "s3cret" not in repr(spec) and "sp'" not in repr(spec)


def test_sentinel_url_defaults_and_tls():
    spec = parse_sentinel_url("rediss+sentinel://:pw@h1/svc")
    assert (spec.sentinels, spec.service, spec.db, spec.username, spec.password, spec.tls) == \
        ((("h1", 26379),), "svc", 0, None, "pw", True)


@pytest.mark.parametrize("url, problem", [
    ("redis+sentinel://h1:26379", "no service name"),
    ("redis+sentinel://h1:26379/", "no service name"),
    ("redis+sentinel://h1:26379,/svc", "empty sentinel address"),
    ("redis+sentinel://h1:notaport/svc", "port must be a number"),
    ("redis+sentinel://h1:70000/svc", "port must be a number"),
    ("redis+sentinel://h1/svc/x", "/<service>[/<db number>]"),
    ("redis+sentinel://h1/svc/0/extra", "/<service>[/<db number>]"),
    ("redis+sentinel://h1/svc?socket_timeout=3", "unknown option"),
    ("redis+sentinel://:26379/svc", "has no host"),
])
def test_bad_sentinel_urls_name_the_problem(url, problem):
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")) as info:
        validate_redis_url(url)
    assert "redis+sentinel://127.0.0.1:26379" in str(info.value)  # an example of the right form


def test_passwords_never_reach_error_messages():
    with pytest.raises(ConfigError) as info:
        validate_redis_url("redis+sentinel://user:hunter2@h1:bad/svc?sentinel_password=swordfish")
    assert "hunter2" not in str(info.value) and "swordfish" not in str(info.value)
    assert redact_url("redis://:hunter2@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("redis+sentinel://u:pw@a:1,b:2/svc?sentinel_password=x") == \
        "redis+sentinel://u:***@a:1,b:2/svc?sentinel_password=***"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


def test_connect_redis_through_sentinels_builds_a_sentinel_managed_client():
    from redis.sentinel import SentinelConnectionPool

    client = connect_redis("redis+sentinel://127.0.0.1:1,127.0.0.1:2/svc/3")  # connects lazily
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "svc" and pool.connection_kwargs["db"] == 3
    assert [(c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
            for c in pool.sentinel_manager.sentinels] == [("127.0.0.1", 1), ("127.0.0.1", 2)]
    # connections that drop themselves when a read is interrupted (redis/redis-py#4292)
    assert pool.connection_class.read_response.__kwdefaults__["disconnect_on_error"] is True
    tls = connect_redis("rediss+sentinel://127.0.0.1:1/svc").connection_pool.connection_class
    assert tls.__name__ == "_SentinelSSLConnection" and tls.read_response.__kwdefaults__["disconnect_on_error"] is True


def test_plain_redis_urls_still_validate():
    assert validate_redis_url(" redis://127.0.0.1:6379/0 ") == "redis://127.0.0.1:6379/0"
    with pytest.raises(ConfigError, match="redis\\+sentinel://"):
        validate_redis_url("http://127.0.0.1:6379")


# ----------------------------------------------------------------- Redis identity

INFO = {"run_id": "r1", "master_replid": "a" * 40, "master_replid2": 0, "master_repl_offset": 500,
        "second_repl_offset": -1, "role": "master"}


def test_identity_from_info():
    identity = parse_identity(INFO)
    assert identity == RedisIdentity("r1", "a" * 40, "0", 500, -1)
    assert identity.fingerprint == f"r1/{'a' * 40}"
    assert parse_identity({"role": "master"}) is None  # INFO restricted: no identity, no detection


def test_describe_change_tells_failover_from_restart():
    old = RedisIdentity("r1", "a" * 40, offset=900)
    promoted = RedisIdentity("r2", "b" * 40, replid2="a" * 40, second_offset=801)
    assert "replica was promoted" in describe_change(old, promoted) and "800" in describe_change(old, promoted)
    assert "restarted" in describe_change(old, RedisIdentity("r3", "c" * 40))


class _InfoOnly:
    """Answers INFO like a server would (unit test of the bookkeeping only)."""

    def __init__(self, *infos: dict) -> None:
        self._infos = iter(infos)

    def info(self, *sections: str) -> dict:
        return next(self._infos)


def test_failover_watch_reports_a_change_until_it_is_handled():
    promoted = dict(INFO, run_id="r2", master_replid="b" * 40, master_replid2="a" * 40, second_repl_offset=400)
    watch = FailoverWatch()
    client = _InfoOnly(INFO, INFO, promoted, promoted, promoted)
    assert watch.check(client) is None and watch.fingerprint == f"r1/{'a' * 40}"
    assert watch.check(client) is None
    assert "promoted" in watch.check(client)
    # the relay's handling failed (Redis dropped while it fenced): the next pass sees the change again
    assert "promoted" in watch.check(client) and watch.fingerprint == f"r1/{'a' * 40}"
    watch.confirm()
    assert watch.check(client) is None and watch.fingerprint == f"r2/{'b' * 40}"


class _RefusesInfo:
    def info(self, *sections: str) -> dict:
        import redis

        raise redis.ResponseError("unknown command 'INFO'")


def test_failover_watch_says_once_that_info_is_refused():
    from structlog.testing import capture_logs

    watch = FailoverWatch()
    with capture_logs() as logs:
        assert watch.check(_RefusesInfo()) is None
        assert watch.check(_RefusesInfo()) is None
    assert not watch.available and watch.fingerprint is None
    assert len(logs) == 1 and "refuses INFO" in logs[0]["event"] and logs[0]["log_level"] == "warning"


# ----------------------------------------------------------------- cluster errors are weather

CLUSTER_ERRORS = [
    "broadcast: cannot reach enough replicas",
    "Every object failed during insertion. Here is the set of all errors: broadcast: cannot reach enough replicas",
    "Every object failed during insertion. Here is the set of all errors: failed to execute query: leader not "
    "found, can not resolve nodes [s2w-n2,s2w-n1]",
    "Query call with protocol GRPC batch failed with message Received RST_STREAM with error code 8.",
    "Query call with protocol GRPC batch failed with message Deadline Exceeded.",
    "Query call with protocol GRPC delete failed with message [UNKNOWN] batch delete reply: failed to parse hex "
    "string to integer.",
    "impossible to satisfy consistency level (3) > available replicas (1)",
    "no write replica found", "no read replica found", "read repair error: conflict",
    "pull shard: cannot reach enough replicas", "cannot resolve node name: s2w-n2",
    "could not find index for class Item. It might have been deleted in the meantime",
]


@pytest.mark.parametrize("message", CLUSTER_ERRORS)
def test_cluster_errors_are_transient_never_dead_letters(message):
    assert is_transient(message)


@pytest.mark.parametrize("message", [
    "invalid text property 'name' on class 'Item': not a string, but float64",
    "id '42' is not a valid uuid", "invalid blob property 'data': not a valid base64",
])
def test_row_errors_stay_permanent(message):
    assert not is_transient(message)


# ----------------------------------------------------------------- replication settings


def test_replication_settings_defaults_and_validation(tmp_path):
    settings = Settings(sqlite_path=tmp_path / "a.db")
    assert (settings.replication_factor, settings.write_consistency, settings.verify_consistency) == (1, "QUORUM", "ALL")
    assert Settings(sqlite_path=tmp_path / "a.db", write_consistency=" one ").write_consistency == "ONE"
    with pytest.raises(ConfigError, match="write_consistency must be one of ONE, QUORUM, ALL, got 'TWO'"):
        Settings(sqlite_path=tmp_path / "a.db", write_consistency="TWO")
    with pytest.raises(ConfigError, match="replication_factor must be a positive integer"):
        Settings(sqlite_path=tmp_path / "a.db", replication_factor=0)


def test_replication_settings_from_flags_env_and_file(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text('replication_factor = 3\nverify_consistency = "quorum"\n')
    settings = load_settings({"sqlite_path": str(tmp_path / "a.db"), "write_consistency": "ALL"}, config_file=config,
                             environ={})
    assert (settings.replication_factor, settings.write_consistency, settings.verify_consistency) == (3, "ALL", "QUORUM")
    settings = load_settings({"sqlite_path": str(tmp_path / "a.db")}, config_file=config,
                             environ={"S2W_WRITE_CONSISTENCY": "one", "S2W_REPLICATION_FACTOR": "2"})
    assert (settings.replication_factor, settings.write_consistency) == (2, "ONE")
    help_text = CliRunner().invoke(cli, ["init", "--help"]).output
    for option in ("--replication-factor", "--write-consistency", "--verify-consistency"):
        assert option in help_text


def test_a_worker_needs_no_database(tmp_path):
    settings = load_settings({"redis_url": "redis://127.0.0.1:1/0"}, environ={}, needs_database=False)
    assert settings.sqlite_path is None
    with pytest.raises(ConfigError, match="no SQLite database given"):
        settings.open_db()
    with pytest.raises(ConfigError, match="no sqlite_path given"):
        load_settings({"redis_url": "redis://127.0.0.1:1/0"}, environ={})
    given = load_settings({}, environ={"S2W_SQLITE_URL": str(tmp_path / "a.db")}, needs_database=False)
    assert given.sqlite_path == tmp_path / "a.db"  # a path given anywhere still counts
    assert "S2W_SQLITE_URL" not in settings.to_environ()  # a worker's worker processes get none either


def test_the_worker_command_starts_without_a_database_and_names_the_missing_secret(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("S2W_")]:
        monkeypatch.delenv(name)
    result = CliRunner().invoke(cli, ["worker", "--burst", "--redis-url", "redis://127.0.0.1:1/0"])
    assert result.exit_code == 3
    assert "no job secret" in result.output and "no database path is given" in result.output
    assert "sqlite_path" not in result.output


def test_a_burst_worker_that_cannot_reach_redis_fails_instead_of_waiting(monkeypatch):
    # a long-running worker waits Redis out (a failover, a Redis still starting); a burst is one shot
    for name in [n for n in os.environ if n.startswith("S2W_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("S2W_JOB_SECRET", "s" * 32)
    environ = dict(os.environ)  # the worker exports its settings to its process
    try:
        result = CliRunner().invoke(cli, ["worker", "--burst", "--redis-url", "redis://127.0.0.1:1/0"])
        assert result.exit_code == 3, result.output
        assert "error:" in result.output and "127.0.0.1:1" in result.output
    finally:
        os.environ.clear()
        os.environ.update(environ)


def test_collection_config_replication():
    assert replication_config(1) is None
    rc = replication_config(3)
    assert (rc.factor, rc.asyncEnabled, rc.deletionStrategy.value) == (3, True, "TimeBasedResolution")

    import sqlite3

    from sqlite_to_weaviate.mapping import reflect_mapping

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    table = reflect_mapping(conn, None).table("t")
    conn.close()
    assert "replication_config" not in collection_config(table)
    assert collection_config(table, replication_factor=2)["replication_config"].factor == 2


def test_replication_factor_check_names_both_numbers():
    check_replication_factor(3, 3)
    with pytest.raises(ConfigError, match=r"replication_factor 4 is more than the 3 node\(s\) of the Weaviate "
                                          r"cluster at h: .*--replication-factor .* to 3"):
        check_replication_factor(4, 3, " at h")


@pytest.mark.parametrize("count", [1, 3, 10, 11, 101])
def test_cluster_node_names_are_never_substrings_of_each_other(count):
    names = node_names(count, "abcd1234")
    assert len(set(names)) == count and len({len(n) for n in names}) == 1
    assert not any(a != b and a in f"{b}:8300" for a, b in itertools.product(names, names))
