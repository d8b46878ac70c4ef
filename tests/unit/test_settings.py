"""The one settings model: precedence, derived names, validation messages, secrets, and the
seed's MigrationConfig mapped onto it."""

from __future__ import annotations

import pytest

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.operate.config import MigrationConfig
from sqlite_to_weaviate.settings import DEFAULT_BATCH_SIZE, Settings, WorkerSettings
from sqlite_to_weaviate.settings_base import env_names, flag_of


def test_precedence_flag_env_file_default(tmp_path):
    file = tmp_path / "s2w.toml"
    file.write_text('[sqlite_to_weaviate]\nsqlite_url = "file.db"\npartitions = 3\nbatch_size = 7\nread_ahead = 11\n')
    environ = {"S2W_PARTITIONS": "5", "S2W_BATCH_SIZE": "9"}
    s = Settings.load({"partitions": 4, "namespace": None}, environ=environ, config_file=file)
    assert s.partitions == 4            # flag beats env
    assert s.batch_size == 9            # env beats file
    assert s.read_ahead == 11           # file beats default
    assert str(s.sqlite_path) == "file.db" and s.namespace == "s2w"  # alias in the file; None = not given


def test_direct_construction_reads_only_its_arguments(monkeypatch):
    monkeypatch.setenv("S2W_PARTITIONS", "5")
    assert Settings(sqlite_path="a.db").partitions == 16
    assert Settings(sqlite_url="sqlite:///a.db").sqlite_path.name == "a.db"


def test_one_batch_size_default():
    assert Settings(sqlite_path="a.db").batch_size == DEFAULT_BATCH_SIZE == MigrationConfig(sqlite_url="a").batch_size
    assert DEFAULT_BATCH_SIZE == 100


def test_names_are_derived_from_the_fields():
    fields = Settings.model_fields
    assert flag_of("sqlite_path", fields["sqlite_path"]) == "--sqlite-url"
    assert env_names("sqlite_path", fields["sqlite_path"])[0] == "S2W_SQLITE_URL"
    assert flag_of("weaviate_api_key", fields["weaviate_api_key"]) == "--api-key"
    assert env_names("weaviate_api_key", fields["weaviate_api_key"])[0] == "S2W_WEAVIATE_API_KEY"
    assert flag_of("mapping_file", fields["mapping_file"]) == "--mapping"
    assert flag_of("lease_seconds", fields["lease_seconds"]) == "--lease-seconds"
    assert env_names("failure_ttl", fields["failure_ttl"])[0] == "S2W_FAILURE_TTL"


def test_worker_environment_round_trips_and_the_worker_model_is_a_subset():
    s = Settings(sqlite_path="a.db", weaviate_api_key="sekrit", partitions=3, lease_seconds=6.0, mapping_file="m.toml")
    env = s.to_environ()
    assert Settings.load(environ=env) == s
    worker = WorkerSettings.load(environ=env)
    assert set(WorkerSettings.model_fields) < set(Settings.model_fields)
    assert worker.weaviate_api_key.reveal() == "sekrit" and worker.lease_seconds == 6.0
    assert "S2W_MAPPING_FILE" in env and "S2W_WEAVIATE_API_KEY" not in Settings(sqlite_path="a.db").to_environ()


def test_secrets_never_in_repr_str_dump_or_errors():
    s = Settings(sqlite_path="a.db", weaviate_api_key="sekrit-123")
    assert "sekrit" not in repr(s) + str(s) + str(s.model_dump())
    c = MigrationConfig(sqlite_url="a.db", weaviate_api_key="sekrit-123")
    assert "sekrit" not in repr(c) + str(c)
    with pytest.raises(ConfigError) as info:
        Settings.load({"sqlite_path": "a.db"}, environ={"S2W_WEAVIATE_API_KEY": "sekrit-123", "S2W_PARTITIONS": "x"})
    assert "sekrit" not in str(info.value)


def test_the_job_secret_is_one_worker_setting_validated_and_never_shown():
    from sqlite_to_weaviate.writer.job_secret import ENV_VAR

    s = Settings(sqlite_path="a.db", job_secret="j" * 32, redis_url="redis://:pw-123@127.0.0.1:6379/0")
    env = s.to_environ()
    assert env[ENV_VAR] == "j" * 32 == env["S2W_JOB_SECRET"]
    assert WorkerSettings.load(environ=env).job_secret == "j" * 32 and "job_secret" in WorkerSettings.model_fields
    assert Settings.load(environ=env) == s
    assert "j" * 32 not in repr(s) + str(s) + str(s.model_dump())
    assert "pw-123" not in repr(s) + str(s)
    assert "redis://:***@127.0.0.1:6379/0" in repr(s)
    with pytest.raises(ConfigError, match=r"job_secret is 5 characters long; use at least 16 \(e.g. .*\) \(from "
                                          r"S2W_JOB_SECRET\)") as info:
        Settings.load({"sqlite_path": "a.db"}, environ={"S2W_JOB_SECRET": "short"})
    assert "short" not in str(info.value).replace("characters long", "")
    with pytest.raises(ConfigError, match="whitespace") as info:
        Settings(sqlite_path="a.db", job_secret=" " + "j" * 32)
    assert "j" * 32 not in str(info.value)
    c = MigrationConfig(sqlite_url="a.db", redis_url="redis://u:pw-123@h:6379/0",
                        settings_overrides={"job_secret": "k" * 32})
    assert "pw-123" not in repr(c) + str(c) and "k" * 32 not in repr(c) + str(c)
    assert c.to_settings().job_secret == "k" * 32


@pytest.mark.parametrize("values, message", [
    (dict(partitions=0), "partitions must be a positive integer, got 0"),
    (dict(partitions=True), "partitions must be a number, got True"),
    (dict(max_retries=-1), "max_retries must be an integer >= 0, got -1"),
    (dict(job_timeout=15.5), "job_timeout: cannot read 15.5 as int"),
    (dict(lease_seconds=0), "lease_seconds must be a positive number of seconds, got 0"),
    (dict(lease_seconds=float("inf")), "lease_seconds must be a finite number of seconds, got inf"),
    (dict(outbox_retention_seconds=-1), "outbox_retention_seconds must be a number of seconds >= 0, got -1"),
    (dict(lease_seconds=200.0), r"lease_seconds \(200.0\) must be below job_timeout \(180\)"),
    (dict(namespace="a b"), "namespace 'a b': use 1-64 letters"),
    (dict(weaviate_url="ftp://x"), "scheme must be http or https"),
    (dict(redis_url="http://h"), "redis_url 'http://h': scheme must be"),
    (dict(sqlite_path="sqlite://x"), "sqlite_url 'sqlite://x': expected sqlite:///"),
    (dict(bach_size=3), "unknown setting 'bach_size'; did you mean 'batch_size'"),
])
def test_errors_name_the_setting(values, message):
    values.setdefault("sqlite_path", "a.db")
    with pytest.raises(ConfigError, match=message):
        Settings(**values)


def test_errors_say_where_the_value_came_from(tmp_path):
    with pytest.raises(ConfigError, match=r"got 'many' .*\(from S2W_PARTITIONS\)|cannot read 'many' as int \(from S2W"):
        Settings.load({"sqlite_path": "a.db"}, environ={"S2W_PARTITIONS": "many"})
    file = tmp_path / "s.toml"
    file.write_text("poll_interval = -1\n")
    with pytest.raises(ConfigError, match=r"poll_interval must be a positive number of seconds, got -1 \(from settings "
                                          r"file '.*s.toml'\)"):
        Settings.load({"sqlite_path": "a.db"}, environ={}, config_file=file)
    file.write_text("partition = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'partition'; did you mean 'partitions'"):
        Settings.load({"sqlite_path": "a.db"}, environ={}, config_file=file)
    with pytest.raises(ConfigError, match=r"no sqlite_path given: pass --sqlite-url \(or set S2W_SQLITE_URL\)"):
        Settings.load(environ={})


def test_settings_are_immutable_and_replace_validates():
    s = Settings(sqlite_path="a.db")
    with pytest.raises(Exception):
        s.partitions = 3  # type: ignore[misc]
    assert s.replace(partitions=3).partitions == 3 and s.partitions == 16
    with pytest.raises(ConfigError, match="partitions must be a positive integer"):
        s.replace(partitions=0)


def test_migration_config_maps_onto_settings():
    c = MigrationConfig(sqlite_url="a.db", batch_size=7, max_retries=1, retry_delay=0.5, namespace="n",
                        settings_overrides={"partitions": 2})
    s = c.to_settings()
    assert (s.batch_size, s.max_retries, s.retry_delay, s.namespace, s.partitions) == (7, 1, 0.5, "n", 2)
    back = MigrationConfig.from_settings(s, dry_run=True)
    assert back.to_settings() == s and back.dry_run
    with pytest.raises(ConfigError, match="partitions must be a positive integer"):
        MigrationConfig(sqlite_url="a.db", settings_overrides={"partitions": 0})


def test_the_readme_table_is_generated_from_the_model():
    from pathlib import Path

    from sqlite_to_weaviate.settings_base import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- settings table: generated -->\n", "<!-- end of settings table -->"
    shown = readme[readme.index(start) + len(start):readme.index(end)]
    assert shown == markdown_table(Settings), "regenerate it: python -m sqlite_to_weaviate.settings"
