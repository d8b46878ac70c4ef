"""``MigrationConfig``: the original design's configuration object, mapped onto the pipeline's settings.

Its field names and defaults are the original design's API. The fields it shares with
:class:`~sqlite_to_weaviate.settings.Settings` reuse the same types (hence the same
validation and messages); the rest are the one-shot migration's own. It is declared like
any settings model (``settings_base.py``), so it is loaded the same way: keyword arguments
> environment variables ``S2W_<FIELD>`` (the API key also as ``S2W_API_KEY``) > a TOML
file (keys named like the fields, optionally under ``[migration]`` or
``[sqlite_to_weaviate]``) > the defaults. :meth:`MigrationConfig.to_settings` translates it
(``settings_overrides`` carries any other Settings field), and runs on creation, so a bad
value fails before anything is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from sqlite_to_weaviate.settings import (
    DEFAULT_BATCH_SIZE, DEFAULT_REDIS_URL, DEFAULT_WEAVIATE_URL, Count, Namespace, PositiveInt, RedisUrl, Seconds,
    Settings, WeaviateUrl,
)
from sqlite_to_weaviate.settings_base import Knob, SettingsModel
from sqlite_to_weaviate.weaviate_adapter import Secret

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str) -> str:
    if str(value).upper() not in _LOG_LEVELS:
        raise ValueError(f"log_level {value!r} is not one of {', '.join(_LOG_LEVELS)}")
    return value


class MigrationConfig(SettingsModel):
    """The one-shot migration's settings (see the module docstring)."""

    file_what: ClassVar[str] = "config file"
    file_sections: ClassVar[tuple[str, ...]] = ("migration", "sqlite_to_weaviate")

    sqlite_url: Annotated[str, Knob("Path or sqlite:///path of the app's database.")]
    weaviate_url: Annotated[WeaviateUrl, Knob("Weaviate URL.")] = DEFAULT_WEAVIATE_URL
    weaviate_api_key: Annotated[Secret | None, Knob("Weaviate API key (never logged).", aliases=("api_key",))] = None
    batch_size: Annotated[PositiveInt, Knob("Changes per job.")] = DEFAULT_BATCH_SIZE
    max_retries: Annotated[Count, Knob("Retries of a failed Weaviate request.")] = 3
    retry_delay: Annotated[Seconds, Knob("First backoff delay.", unit="seconds")] = 1.0
    validation_sample_size: Annotated[Count, Knob("Rows compared field by field during verification.")] = 1000
    search_validation_sample: Annotated[Count, Knob(
        "Rows per table whose search is checked after verification, as verify --search does (0: none).")] = 0
    search_min_recall: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False), Knob(
        "Lowest acceptable search recall (keyword recall@10, each vector's self-hit rate).")] = 0.9
    enable_parallel_processing: Annotated[bool, Knob("Run worker_count workers instead of one.")] = False
    worker_count: Annotated[PositiveInt, Knob("Workers with parallel processing.")] = 4
    memory_limit_mb: Annotated[PositiveInt, Knob("The backfill pauses above this RSS.")] = 1024
    dry_run: Annotated[bool, Knob("Predict, write nothing.")] = False
    backup_before_migration: Annotated[bool, Knob("Back up the database first.")] = True
    rollback_on_failure: Annotated[bool, Knob("Roll back when verification fails.")] = True
    log_level: Annotated[str, AfterValidator(_log_level), Knob("Log level.")] = "INFO"
    log_file: Annotated[str | None, Knob("Log file (default: stderr).")] = None
    redis_url: Annotated[RedisUrl, Knob("Redis URL.")] = DEFAULT_REDIS_URL
    namespace: Annotated[Namespace, Knob("Prefix of Redis keys and queues.")] = "s2w"
    mapping_file: Annotated[str | None, Knob("Mapping TOML file.")] = None
    collection_prefix: Annotated[str, Knob("Prefix for every collection name.")] = ""
    backup_path: Annotated[str | None, Knob("Backup file or directory (default: next to the database).")] = None
    timeout_s: Annotated[Seconds, Knob("Backfill + drain must finish within this.", unit="seconds")] = 3600.0
    settings_overrides: Annotated[Mapping[str, Any], Knob("Any other Settings field.", cli=False)] = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _valid_settings(self) -> "MigrationConfig":
        self.to_settings()  # validates the database URL and every override
        return self

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
        return Settings(**values)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> "MigrationConfig":
        """The CLI path: connection options already resolved into ``settings``."""
        mapped = {"sqlite_path", "weaviate_url", "redis_url", "weaviate_api_key", "namespace", "mapping_file",
                  "collection_prefix", "batch_size", "max_retries", "retry_delay"}
        tuning = {name: getattr(settings, name) for name in Settings.model_fields if name not in mapped}
        return cls(sqlite_url=str(settings.sqlite_path), weaviate_url=settings.weaviate_url,
                   weaviate_api_key=settings.weaviate_api_key, redis_url=settings.redis_url,
                   namespace=settings.namespace,
                   mapping_file=str(settings.mapping_file) if settings.mapping_file else None,
                   collection_prefix=settings.collection_prefix, batch_size=settings.batch_size,
                   max_retries=settings.max_retries, retry_delay=settings.retry_delay,
                   settings_overrides=tuning, **options)


def create_migration_config(config_file: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
                            **kwargs: Any) -> MigrationConfig:
    """Validated config from keyword arguments > ``S2W_*`` environment > ``config_file`` > defaults."""
    return MigrationConfig.load(kwargs, environ=environ, config_file=config_file)
