"""Pipeline settings: the one place a setting is declared, as an immutable object handed
to every component explicitly.

Adding a setting is one edit here: a field with its type, default, constraints and a
:class:`~sqlite_to_weaviate.settings_base.Knob` (help, and flag / env names when they are
not ``--field-name`` / ``S2W_FIELD_NAME``). The CLI options, the environment variables,
the settings-file keys, the worker environment and the README's settings table are all
derived from it (``settings_base.py`` says how).

No component reads the environment on its own: the CLI (and the job function inside an
RQ worker, whose process ``worker`` starts with :meth:`~SettingsModel.to_environ`) call
:meth:`~SettingsModel.load`; everything else receives a :class:`Settings`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.redis_adapter import validate_redis_url
from sqlite_to_weaviate.settings_base import Knob, SettingsModel, derive_model
from sqlite_to_weaviate.sqlite_db import sqlite_path_from_url
from sqlite_to_weaviate.weaviate_adapter import Secret, WeaviateEndpoint

_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")
CONSISTENCY_LEVELS = ("ONE", "QUORUM", "ALL")

DEFAULT_WEAVIATE_URL = "http://127.0.0.1:8080?grpc_port=50051"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_BATCH_SIZE = 100  # the original design's default (MigrationConfig); benches pass their own
JOB_SECRET_MIN_LENGTH = 16


def _checked(check: Any) -> Any:
    """A validator from one of the adapters' checks (which raise ConfigError naming the setting)."""

    def validate(value: Any) -> Any:
        try:
            result = check(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value if result is None else result

    return validate


def _namespace(value: str) -> str:
    if not _NAMESPACE.fullmatch(value):
        raise ValueError(f"namespace {value!r}: use 1-64 letters, digits, '_' or '-' (it becomes part of RQ job ids)")
    return value


def validate_job_secret(secret: Secret) -> Secret:
    """Refuse job secrets too short to resist guessing (the message never quotes the value)."""
    value = secret.reveal()
    if len(value) < JOB_SECRET_MIN_LENGTH:
        raise ConfigError(f"job_secret is {len(value)} characters long; use at least {JOB_SECRET_MIN_LENGTH} "
                          "(e.g. `openssl rand -hex 32`)")
    if value != value.strip():
        raise ConfigError("job_secret starts or ends with whitespace; remove it (a copy-paste accident?)")
    return secret


def _job_secret(value: Secret | None) -> Secret | None:
    return None if value is None else validate_job_secret(value)


def _consistency(value: str, info: ValidationInfo) -> str:
    level = value.strip().upper()
    if level not in CONSISTENCY_LEVELS:
        raise ValueError(f"{info.field_name} must be one of {', '.join(CONSISTENCY_LEVELS)}, got {value!r}")
    return level


def _optional_sqlite_path(value: Any) -> Path | None:
    return None if value is None else sqlite_path_from_url(value)


def _not_bool(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, bool):  # True would pass as 1
        raise ValueError(f"{info.field_name} must be a number, got {value!r}")
    return value


# Types shared by the models that declare these settings (Settings, MigrationConfig).
SqlitePath = Annotated[Path, BeforeValidator(_checked(sqlite_path_from_url))]
OptionalSqlitePath = Annotated[Path | None, BeforeValidator(_checked(_optional_sqlite_path))]
WeaviateUrl = Annotated[str, AfterValidator(_checked(lambda v: WeaviateEndpoint.parse(v) and None))]
RedisUrl = Annotated[str, AfterValidator(_checked(validate_redis_url))]
Namespace = Annotated[str, AfterValidator(_namespace)]
PositiveInt = Annotated[int, BeforeValidator(_not_bool), Field(ge=1)]
Count = Annotated[int, BeforeValidator(_not_bool), Field(ge=0)]
JobSecret = Annotated[Secret | None, AfterValidator(_checked(_job_secret))]
Seconds = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]
SecondsOrZero = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, allow_inf_nan=False)]
ConsistencyLevel = Annotated[str, AfterValidator(_consistency)]


class Settings(SettingsModel):
    """Everything the relay, workers, backfill and verifier need to agree on.

    ``job_secret`` authenticates what travels through Redis between the relay and the
    workers (writer/signing.py); when unset, ``init`` (or the relay) generates one and keeps
    it in the database, where workers beside it read it and remote workers are given it
    explicitly (docs/operations.md, "Redis is a trust boundary").

    ``sqlite_path`` must always be given, and may be None only for a worker: workers need
    Redis and Weaviate, never the database file (:attr:`database` and :meth:`open_db` then
    refuse with a clear message). The ``worker`` command passes None when no path is given.
    """

    sqlite_path: Annotated[OptionalSqlitePath, Knob("Path or sqlite:///path of the app's database (a worker "
                                                    "needs none).", flag="--sqlite-url", env="S2W_SQLITE_URL",
                                                    aliases=("sqlite_url",))]
    weaviate_url: Annotated[WeaviateUrl, Knob("Weaviate URL, with the gRPC port as ?grpc_port=N.",
                                              worker=True)] = DEFAULT_WEAVIATE_URL
    weaviate_api_key: Annotated[Secret | None, Knob("Weaviate API key (never logged or printed).", flag="--api-key",
                                                    aliases=("api_key",), worker=True)] = None
    redis_url: Annotated[RedisUrl, Knob("Redis URL of the job queue (a password, as in "
                                        "redis://:PASSWORD@host:6379/0, is never printed); behind Sentinel: "
                                        "redis+sentinel://HOST1:26379,HOST2:26379/SERVICE/0.")] = DEFAULT_REDIS_URL
    job_secret: Annotated[JobSecret, Knob("Secret shared by relay and workers that signs jobs and acks (prefer "
                                          "the environment variable or --job-secret-file; default: generated by "
                                          "init, kept in the database).", worker=True)] = None
    namespace: Annotated[Namespace, Knob("Prefix of Redis keys and queues: isolates pipelines in one Redis.")] = "s2w"
    mapping_file: Annotated[Path | None, Knob("Mapping TOML file (docs/mapping.md).", flag="--mapping",
                                              worker=True)] = None  # workers read its [embedders]
    collection_prefix: Annotated[str, Knob("Prefix for every collection name.", worker=True)] = ""
    partitions: Annotated[PositiveInt, Knob(
        "Key partitions (at most one history job in flight each); also the most live jobs in flight at once."
    )] = 16
    batch_size: Annotated[PositiveInt, Knob("Changes per job.")] = DEFAULT_BATCH_SIZE
    request_objects: Annotated[PositiveInt, Knob(
        "Objects per Weaviate write request; a job's upserts go in requests of at most this many. Weaviate "
        "indexes the vectors of every request in one first-come-first-served queue, so a live request waits "
        "behind each history object already sent.", worker=True)] = 100
    read_ahead: Annotated[PositiveInt, Knob("Outbox rows the relay holds in memory at most.")] = 50_000
    poll_interval: Annotated[Seconds, Knob("Relay poll when no file event arrives.", unit="seconds")] = 1.0
    lease_seconds: Annotated[Seconds, Knob("A job's lease on its partition or live slot; a worker stops writing "
                                           "once it has expired (each request's deadline is a third of it).",
                                           unit="seconds", worker=True)] = 30.0
    job_timeout: Annotated[PositiveInt, Knob("RQ's hard limit for one job.", unit="seconds")] = 180
    max_retries: Annotated[Count, Knob("Retries of a failed Weaviate request inside one job.", worker=True)] = 3
    retry_delay: Annotated[Seconds, Knob("First backoff delay; it doubles per failure.", unit="seconds",
                                         worker=True)] = 1.0
    backoff_max: Annotated[Seconds, Knob("Longest backoff delay.", unit="seconds", worker=True)] = 30.0
    outbox_retention_seconds: Annotated[SecondsOrZero, Knob("Keep applied outbox rows this long (0: prune at "
                                                            "once).", unit="seconds")] = 0.0
    failure_ttl: Annotated[PositiveInt, Knob("How long RQ keeps a failed job's record.", unit="seconds")] = 7 * 86400
    # scale-out: a replicated Weaviate cluster (docs/scale-out.md)
    replication_factor: Annotated[PositiveInt, Knob("Copies of every object; collections are created with it "
                                                    "(checked against the cluster's nodes).",
                                                    worker=True)] = 1  # a worker may create the embedding cache
    write_consistency: Annotated[ConsistencyLevel, Knob("Replicas that must confirm each write: ONE, QUORUM or ALL "
                                                        "(at factor 1 all three mean the one copy).",
                                                        worker=True)] = "QUORUM"
    verify_consistency: Annotated[ConsistencyLevel, Knob("Replicas verify reads before a difference counts: ONE, "
                                                         "QUORUM or ALL.")] = "ALL"

    @model_validator(mode="after")
    def _lease_below_job_timeout(self) -> "Settings":
        if self.lease_seconds >= self.job_timeout:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must be below job_timeout ({self.job_timeout}): "
                "a worker renews its lease while it works and must lose it before RQ kills the job"
            )
        return self

    @property
    def weaviate(self) -> WeaviateEndpoint:
        return WeaviateEndpoint.parse(self.weaviate_url, self.weaviate_api_key.reveal() if self.weaviate_api_key else None)

    def connect_weaviate(self):  # -> weaviate.WeaviateClient
        return self.weaviate.connect()

    def connect_redis(self):  # -> redis.Redis
        from sqlite_to_weaviate.redis_adapter import connect_redis

        return connect_redis(self.redis_url)

    @property
    def database(self) -> Path:
        """The SQLite file; a ConfigError for settings made without one (a worker's)."""
        if self.sqlite_path is None:
            raise ConfigError("no SQLite database given: pass --sqlite-url PATH (or set S2W_SQLITE_URL)")
        return self.sqlite_path

    def open_db(self, **kwargs: Any):  # -> sqlite3.Connection
        from sqlite_to_weaviate.sqlite_db import open_db

        return open_db(self.database, **kwargs)

    def load_mapping(self, conn):  # -> Mapping
        """The effective mapping: reflected schema + the config file, collection prefix applied."""
        from sqlite_to_weaviate.mapping import load_mapping_config, reflect_mapping
        from sqlite_to_weaviate.mapping.prefix import with_prefix

        config = load_mapping_config(self.mapping_file) if self.mapping_file else None
        return with_prefix(reflect_mapping(conn, config), self.collection_prefix)


WorkerSettings = derive_model(
    Settings, "WorkerSettings", lambda knob: knob.worker,
    doc="What the job function needs inside an RQ worker that has only Redis and Weaviate (the settings marked "
        "``worker=True``); a plain ``rq worker`` is configured with their variables.",
)


if __name__ == "__main__":  # the README's settings table: python -m sqlite_to_weaviate.settings
    from sqlite_to_weaviate.settings_base import markdown_table

    print(markdown_table(Settings), end="")
