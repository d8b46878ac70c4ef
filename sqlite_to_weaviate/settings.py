"""Pipeline settings: one immutable object handed to every component explicitly.

No component reads the environment on its own (except RQ job functions, which run inside
workers that ``worker`` starts with these values exported); the CLI and the Python API
build a :class:`Settings` and pass it down. Validation happens here, once, with messages
that name the setting.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.redis_adapter import validate_redis_url
from sqlite_to_weaviate.sqlite_db import sqlite_path_from_url
from sqlite_to_weaviate.weaviate_adapter import Secret, WeaviateEndpoint

_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")
CONSISTENCY_LEVELS = ("ONE", "QUORUM", "ALL")


@dataclass(frozen=True)
class Settings:
    """Everything the relay, workers, backfill and verifier need to agree on.

    ``sqlite_path`` may be None only for a worker: workers need Redis and Weaviate, never
    the database file (:meth:`open_db` then refuses with a clear message).
    """

    sqlite_path: Path | None
    weaviate_url: str = "http://127.0.0.1:8080?grpc_port=50051"
    redis_url: str = "redis://127.0.0.1:6379/0"
    weaviate_api_key: Secret | None = None
    namespace: str = "s2w"
    mapping_file: Path | None = None
    collection_prefix: str = ""
    partitions: int = 16
    batch_size: int = 200
    read_ahead: int = 50_000
    poll_interval: float = 1.0
    lease_seconds: float = 30.0
    job_timeout: int = 180
    max_retries: int = 3
    retry_delay: float = 1.0
    backoff_max: float = 30.0
    outbox_retention_seconds: float = 0.0
    failure_ttl: int = 7 * 86400
    # --- scale-out: a replicated Weaviate cluster (docs/scale-out.md) ---
    replication_factor: int = 1  # copies of every object; collections are created with it
    write_consistency: str = "QUORUM"  # replicas that must confirm a worker's write (= ONE at factor 1)
    verify_consistency: str = "ALL"  # replicas verify reads a difference from before it counts

    def __post_init__(self) -> None:
        if self.sqlite_path is not None:
            object.__setattr__(self, "sqlite_path", sqlite_path_from_url(self.sqlite_path))
        WeaviateEndpoint.parse(self.weaviate_url)
        validate_redis_url(self.redis_url)
        if self.weaviate_api_key is not None and not isinstance(self.weaviate_api_key, Secret):
            object.__setattr__(self, "weaviate_api_key", Secret(self.weaviate_api_key))
        if not _NAMESPACE.fullmatch(self.namespace):
            raise ConfigError(f"namespace {self.namespace!r}: use 1-64 letters, digits, '_' or '-' (it becomes part of RQ job ids)")
        for name in ("write_consistency", "verify_consistency"):
            value = getattr(self, name)
            level = value.strip().upper() if isinstance(value, str) else value
            if level not in CONSISTENCY_LEVELS:
                raise ConfigError(f"{name} must be one of {', '.join(CONSISTENCY_LEVELS)}, got {value!r}")
            object.__setattr__(self, name, level)
        for name in ("partitions", "batch_size", "read_ahead", "job_timeout", "max_retries", "failure_ttl",
                     "replication_factor"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "max_retries" else 1):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("poll_interval", "lease_seconds", "retry_delay", "backoff_max", "outbox_retention_seconds"):
            value = getattr(self, name)
            # nan and inf pass every comparison below (nan <= 0 is False): refuse them by name
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}")
            if value < 0 or (value == 0 and name != "outbox_retention_seconds"):
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.lease_seconds >= self.job_timeout:
            raise ConfigError(
                f"lease_seconds ({self.lease_seconds}) must be below job_timeout ({self.job_timeout}): "
                "a worker renews its lease while it works and must lose it before RQ kills the job"
            )

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

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
