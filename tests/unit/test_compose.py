"""docker-compose.yml stays consistent with the code, since CI has no Docker to run it.

Checked against the compose specification by hand and here mechanically: it parses,
Weaviate is the pinned version with auto-schema off, every sidecar gets valid connection
URLs and the app's data at /data, every command is a real CLI command, dependencies
wait for health, and every ``${VAR}`` has a default — except the Redis password, which
is required (``${VAR:?message}``): Redis is a trust boundary, and a default password in a
public file would protect nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlite_to_weaviate.cli import main as cli
from sqlite_to_weaviate.local.weaviate_build import WEAVIATE_VERSION
from sqlite_to_weaviate.redis_adapter import validate_redis_url
from sqlite_to_weaviate.weaviate_adapter import WeaviateEndpoint

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SIDECARS = ("init", "relay", "worker", "backfill", "verify")
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")
REQUIRED = {"S2W_REDIS_PASSWORD"}
PASSWORD = "0123abcd" * 6  # what a user puts in .env (`openssl rand -hex 24`)


class MissingVariable(ValueError):
    """Compose stops with the variable's message (``${VAR:?message}``) when it is unset."""


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}`` and
    ``${VAR?err}`` (``$$`` is a literal $)."""
    env = env or {}

    def replace(match: re.Match) -> str:
        name, op, default = match.group("name"), match.group("op"), match.group("default") or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        if op in (":?", "?"):
            if (env.get(name) if op == ":?" else name in env):
                return env[name]
            raise MissingVariable(f"{name}: {default}")
        return env.get(name, "")

    return _VARIABLE.sub(replace, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def environment(service: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    values = service.get("environment") or {}
    if isinstance(values, list):
        values = dict(item.split("=", 1) for item in values)
    env = {"S2W_REDIS_PASSWORD": PASSWORD} if env is None else env
    return {key: interpolate(str(value), env) for key, value in values.items()}


def test_every_variable_has_a_default_or_is_a_required_secret():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    variables = list(_VARIABLE.finditer(text))
    assert variables, "expected the data dir and ports to be configurable"
    assert [m.group(0) for m in variables if m.group("op") is None] == []
    required = [m for m in variables if m.group("op") in (":?", "?")]
    assert {m.group("name") for m in required} == REQUIRED
    assert all(m.group("op") == ":?" and "S2W_REDIS_PASSWORD" in m.group("default") for m in required)
    assert "$" not in _VARIABLE.sub("", text).replace("$$", ""), "a $VAR without braces or a malformed ${...}"


def test_weaviate_is_the_pinned_version_without_autoschema(services):
    weaviate = services["weaviate"]
    repository, tag = weaviate["image"].rsplit(":", 1)
    assert repository.endswith("semitechnologies/weaviate")
    assert tag == WEAVIATE_VERSION.removeprefix("v")
    env = environment(weaviate)
    assert env["AUTOSCHEMA_ENABLED"] == "false"
    assert env["DEFAULT_VECTORIZER_MODULE"] == "none"
    assert env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "true"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in weaviate["volumes"]}
    assert mounts[env["PERSISTENCE_DATA_PATH"]] == "weaviate-data"
    assert "/v1/.well-known/ready" in " ".join(weaviate["healthcheck"]["test"])
    container_ports = {interpolate(p).rsplit(":", 1)[-1] for p in weaviate["ports"]}
    assert container_ports == {"8080", "50051"}


def test_redis_has_a_healthcheck_and_a_volume(services):
    redis = services["redis"]
    assert redis["image"] == "redis:7"
    kind, script = redis["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and script.startswith("redis-cli ping") and "PONG" in script  # NOAUTH fails it
    assert any(v.startswith("redis-data:") for v in redis["volumes"])
    assert not redis.get("ports")  # not published on the host


def test_redis_requires_the_password_every_sidecar_uses(services):
    redis = services["redis"]
    command = [interpolate(part, {"S2W_REDIS_PASSWORD": PASSWORD}) for part in redis["command"]]
    assert command[0] == "redis-server"
    assert command[command.index("--requirepass") + 1] == PASSWORD
    assert environment(redis)["REDISCLI_AUTH"] == PASSWORD  # the healthcheck authenticates
    for name in SIDECARS:
        url = environment(services[name])["S2W_REDIS_URL"]
        assert validate_redis_url(url) == f"redis://:{PASSWORD}@redis:6379/0"
        with pytest.raises(MissingVariable, match="S2W_REDIS_PASSWORD"):
            environment(services[name], env={})  # `docker compose up` without it stops with that message


def test_named_volumes_are_declared(compose, services):
    used = {
        volume.split(":")[0]
        for service in services.values()
        for volume in (interpolate(v) for v in service.get("volumes", []))
        if not volume.startswith((".", "/", "~"))
    }
    assert used == set(compose["volumes"])


@pytest.mark.parametrize("name", SIDECARS)
def test_sidecar_connects_to_the_stack_and_mounts_the_data(services, name):
    service = services[name]
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    env = environment(service)
    assert env["S2W_SQLITE_URL"] == "/data/app.db"
    assert env["S2W_WEAVIATE_URL"] == "http://weaviate:8080?grpc_port=50051"
    assert env["S2W_REDIS_URL"] == f"redis://:{PASSWORD}@redis:6379/0"
    endpoint = WeaviateEndpoint.parse(env["S2W_WEAVIATE_URL"])
    assert (endpoint.host, endpoint.http_port, endpoint.grpc_port) == ("weaviate", 8080, 50051)
    validate_redis_url(env["S2W_REDIS_URL"])
    assert [interpolate(v) for v in service["volumes"]] == ["./data:/data"]
    for server in ("weaviate", "redis"):
        assert service["depends_on"][server]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", SIDECARS)
def test_sidecar_command_is_a_real_cli_command(services, name):
    program, command, *_ = services[name]["command"]
    assert program == "sqlite-to-weaviate"
    assert command == name
    assert command in cli.commands, f"docker-compose.yml runs `sqlite-to-weaviate {command}`, which the CLI lacks"


def test_healthcheck_commands_are_real(services):
    for service in services.values():
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "sqlite-to-weaviate"]:
            assert test[2] in cli.commands


def test_dependencies_exist_and_one_shots_do_not_restart(services):
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, (name, target)
            assert rule["condition"] in ("service_healthy", "service_completed_successfully")
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
            else:
                assert services[target]["restart"] == "no", (name, target)
    for one_shot in ("init", "backfill", "verify"):
        assert services[one_shot]["restart"] == "no"


def test_services_run_by_default_and_by_profile(services):
    assert services["backfill"]["profiles"] == ["backfill"]
    assert services["verify"]["profiles"] == ["cron"]
    for name in ("weaviate", "redis", "init", "relay", "worker"):
        assert "profiles" not in services[name]


def test_workers_scale(services):
    worker = services["worker"]
    assert isinstance(worker["deploy"]["replicas"], int) and worker["deploy"]["replicas"] >= 1
    assert "container_name" not in worker  # a fixed name would forbid --scale
    assert not worker.get("ports")


def test_dockerfile_installs_the_package_on_python_311():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^RUN pip install /src", dockerfile, re.M)
    assert "ENTRYPOINT" not in dockerfile  # compose commands start with the program name


CLUSTER_ENV = REPO / "docker" / "cluster.env"
CLUSTER_NODES = ("weaviate", "weaviate-node2", "weaviate-node3")


def cluster_env() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in CLUSTER_ENV.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def node_environment(service: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    return {key: interpolate(str(value), env) for key, value in (service.get("environment") or {}).items()}


def test_default_weaviate_is_a_one_node_cluster(services):
    env = node_environment(services["weaviate"], {})
    assert (env["CLUSTER_HOSTNAME"], env["RAFT_JOIN"], env["RAFT_BOOTSTRAP_EXPECT"], env["CLUSTER_JOIN"]) == \
        ("node1", "node1", "1", "")
    for name in CLUSTER_NODES[1:]:
        assert services[name]["profiles"] == ["cluster"]  # not started without the profile
    assert environment(services["relay"])["S2W_REPLICATION_FACTOR"] == "1"


def test_cluster_profile_is_three_consistent_nodes(services):
    env_file = cluster_env()
    assert env_file["COMPOSE_PROFILES"] == "cluster"
    nodes = {name: node_environment(services[name], env_file) for name in CLUSTER_NODES}
    names = [env["CLUSTER_HOSTNAME"] for env in nodes.values()]
    assert names == ["node1", "node2", "node3"]
    # raft matches a node to its RAFT_JOIN entry by substring: no name may contain another
    assert not any(a != b and a in b for a in names for b in names)
    for name, env in nodes.items():
        service = services[name]
        assert service["image"] == services["weaviate"]["image"]
        assert env["RAFT_JOIN"].split(",") == names  # the same voters, in the same order, everywhere
        assert int(env["RAFT_BOOTSTRAP_EXPECT"]) == len(names)
        gossip = env["CLUSTER_GOSSIP_BIND_PORT"]
        assert env["CLUSTER_JOIN"].split(",") == [f"{n}:{gossip}" for n in names]  # every node, its own included
        assert int(env["CLUSTER_DATA_BIND_PORT"]) == int(gossip) + 1
        assert env["AUTOSCHEMA_ENABLED"] == "false"
        assert env["CLUSTER_HOSTNAME"] in service["networks"]["default"]["aliases"]  # RAFT_JOIN names resolve
        assert "/v1/.well-known/ready" in " ".join(service["healthcheck"]["test"])
        assert service["restart"] == "unless-stopped"
    volumes = [services[name]["volumes"][0].split(":")[0] for name in CLUSTER_NODES]
    assert len(set(volumes)) == 3  # one data dir per node
    factor = int(interpolate(services["relay"]["environment"]["S2W_REPLICATION_FACTOR"], env_file))
    assert 1 < factor <= len(names)
