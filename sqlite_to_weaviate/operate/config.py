"""``MigrationConfig``: the original design's configuration object, and where its values come from.

Precedence, highest first: keyword arguments, environment variables ``S2W_<FIELD>`` (plus
the CLI's names ``S2W_SQLITE_URL``, ``S2W_WEAVIATE_API_KEY``), a TOML settings file
(``config_file``; keys named like the fields, optionally under ``[sqlite_to_weaviate]`` or
``[migration]``), the defaults below. It is translated into the pipeline's
:class:`~sqlite_to_weaviate.settings.Settings`, whose validation (URLs, namespace, numbers)
runs on creation, so a bad value fails before anything is touched.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.config_sources import load_toml
from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.redaction import redact_url
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.weaviate_adapter import Secret

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, repr=False)
class MigrationConfig:
    sqlite_url: str
    weaviate_url: str = "http://127.0.0.1:8080?grpc_port=50051"
    weaviate_api_key: str | None = None
    batch_size: int = 100
    max_retries: int = 3
    retry_delay: float = 1.0
    validation_sample_size: int = 1000
    search_validation_sample: int = 0       # > 0: verify search too (verify --search) on this many rows per table
    search_min_recall: float = 0.9
    enable_parallel_processing: bool = False
    worker_count: int = 4
    memory_limit_mb: int = 1024
    dry_run: bool = False
    backup_before_migration: bool = True
    rollback_on_failure: bool = True
    log_level: str = "INFO"
    log_file: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = "s2w"
    mapping_file: str | None = None
    collection_prefix: str = ""
    backup_path: str | None = None          # file or directory; default: next to the database
    timeout_s: float = 3600.0               # backfill + drain must finish within this
    settings_overrides: Mapping[str, Any] = field(default_factory=dict)  # any other Settings field

    def __post_init__(self) -> None:
        if self.weaviate_api_key is not None and not isinstance(self.weaviate_api_key, Secret):
            object.__setattr__(self, "weaviate_api_key", Secret(self.weaviate_api_key))
        for name in ("batch_size", "worker_count", "memory_limit_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.validation_sample_size, int) or self.validation_sample_size < 0:
            raise ConfigError(f"validation_sample_size must be an integer >= 0, got {self.validation_sample_size!r}")
        if not isinstance(self.search_validation_sample, int) or self.search_validation_sample < 0:
            raise ConfigError(f"search_validation_sample must be an integer >= 0, got {self.search_validation_sample!r}")
        if not isinstance(self.search_min_recall, (int, float)) or not 0 <= self.search_min_recall <= 1:
            raise ConfigError(f"search_min_recall must be between 0 and 1, got {self.search_min_recall!r}")
        for name in ("timeout_s", "retry_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive, finite number of seconds, got {value!r}")
        if str(self.log_level).upper() not in _LOG_LEVELS:
            raise ConfigError(f"log_level {self.log_level!r} is not one of {', '.join(_LOG_LEVELS)}")
        self.to_settings()  # validates URLs, namespace, retries

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "weaviate_api_key" and value is not None:
                value = "***"
            elif f.name in ("redis_url", "weaviate_url"):
                value = redact_url(value)
            elif f.name == "settings_overrides":
                value = {k: _shown_override(k, v) for k, v in dict(value).items()}
            parts.append(f"{f.name}={value!r}")
        return f"MigrationConfig({', '.join(parts)})"

    @property
    def workers(self) -> int:
        """Worker processes to run: ``worker_count`` with parallel processing, else one."""
        return self.worker_count if self.enable_parallel_processing else 1

    def to_settings(self) -> Settings:
        values: dict[str, Any] = dict(
            sqlite_path=self.sqlite_url, weaviate_url=self.weaviate_url, redis_url=self.redis_url,
            weaviate_api_key=self.weaviate_api_key, namespace=self.namespace,
            mapping_file=Path(self.mapping_file) if self.mapping_file else None,
            collection_prefix=self.collection_prefix, batch_size=self.batch_size, max_retries=self.max_retries,
            retry_delay=self.retry_delay,
        )
        values.update(self.settings_overrides)
        try:
            return Settings(**values)
        except TypeError as exc:
            raise ConfigError(f"invalid settings_overrides: {exc}") from None

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> "MigrationConfig":
        """The CLI path: connection options already resolved into ``settings``."""
        tuning = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings)
                  if f.name not in {"sqlite_path", "weaviate_url", "redis_url", "weaviate_api_key", "namespace",
                                    "mapping_file", "collection_prefix", "batch_size", "max_retries", "retry_delay"}}
        api_key = settings.weaviate_api_key.reveal() if settings.weaviate_api_key else None
        return cls(sqlite_url=str(settings.sqlite_path), weaviate_url=settings.weaviate_url, weaviate_api_key=api_key,
                   redis_url=settings.redis_url, namespace=settings.namespace,
                   mapping_file=str(settings.mapping_file) if settings.mapping_file else None,
                   collection_prefix=settings.collection_prefix, batch_size=settings.batch_size,
                   max_retries=settings.max_retries, retry_delay=settings.retry_delay,
                   settings_overrides=tuning, **options)


def _shown_override(name: str, value: Any) -> Any:
    """A settings override as a repr may show it: URLs without passwords, secrets masked."""
    if value is None:
        return None
    if name.endswith("_url"):
        return redact_url(value)
    if any(marker in name.lower() for marker in ("secret", "key", "password", "token")):
        return "***"
    return value


_FIELDS = {f.name: f for f in dataclasses.fields(MigrationConfig)}
_ENV_ALIASES = {"weaviate_api_key": ("S2W_WEAVIATE_API_KEY", "S2W_API_KEY")}


def _env_names(name: str) -> tuple[str, ...]:
    return _ENV_ALIASES.get(name, ()) + (f"S2W_{name.upper()}",)


def _coerce(name: str, value: Any) -> Any:
    """Environment and file values to the field's type (bools accept 1/0, true/false, yes/no, on/off)."""
    default = _FIELDS[name].default
    if not isinstance(value, str) or default is None or default is dataclasses.MISSING or isinstance(default, str):
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise ConfigError(f"{name}: cannot read {value!r} as {type(default).__name__}") from None
    return value


def _read_file(path: Path) -> dict[str, Any]:
    data = load_toml(path, "config file")
    section = data.get("migration", data.get("sqlite_to_weaviate", data))
    for key in section:
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, list(_FIELDS), n=1)
            raise ConfigError(f"config file {str(path)!r}: unknown key {key!r}"
                              + (f"; did you mean {close[0]!r}?" if close else ""))
    return dict(section)


def create_migration_config(config_file: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
                            **kwargs: Any) -> MigrationConfig:
    """Validated config from keyword arguments > ``S2W_*`` environment > ``config_file`` > defaults."""
    environ = os.environ if environ is None else environ
    unknown = set(kwargs) - set(_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        close = difflib.get_close_matches(name, list(_FIELDS), n=1)
        raise ConfigError(f"unknown migration setting {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    values: dict[str, Any] = _read_file(Path(config_file)) if config_file else {}
    for name in _FIELDS:
        if name == "settings_overrides":
            continue
        for env in _env_names(name):
            if environ.get(env) not in (None, ""):
                values[name] = environ[env]
                break
    values.update({k: v for k, v in kwargs.items() if v is not None})
    if not values.get("sqlite_url"):
        raise ConfigError("no SQLite database given: pass sqlite_url (or set S2W_SQLITE_URL)")
    return MigrationConfig(**{k: _coerce(k, v) for k, v in values.items()})
