"""What every command shares: connection options, one-line errors, exit codes.

Kept apart from :mod:`sqlite_to_weaviate.cli` so subpackage commands (backfill, verify,
operate) can import it without importing the command group that registers them.

Exit codes, for cron jobs and alerting:

  0  success / healthy          1  differences or problems found (status, verify)
  2  differences found and repaired (verify --repair)
  3  could not run: bad configuration, unreachable service, invalid input
"""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sqlite_to_weaviate.errors import S2WError

EXIT_OK, EXIT_PROBLEMS, EXIT_REPAIRED, EXIT_CANNOT_RUN = 0, 1, 2, 3

_CONNECTION_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--sqlite-url", "sqlite_path"), dict(envvar="S2W_SQLITE_URL", help="Path or sqlite:///path of the app's database.")),
    (("--weaviate-url",), dict(envvar="S2W_WEAVIATE_URL", help="e.g. http://127.0.0.1:8080?grpc_port=50051")),
    (("--api-key", "weaviate_api_key"), dict(envvar="S2W_WEAVIATE_API_KEY", help="Weaviate API key (never logged).")),
    (("--redis-url",), dict(envvar="S2W_REDIS_URL", help="e.g. redis://127.0.0.1:6379/0")),
    (("--namespace",), dict(envvar="S2W_NAMESPACE", help="Prefix of Redis keys and queues (default s2w).")),
    (("--mapping", "mapping_file"), dict(envvar="S2W_MAPPING_FILE", type=click.Path(dir_okay=False), help="Mapping TOML file.")),
    (("--collection-prefix",), dict(envvar="S2W_COLLECTION_PREFIX", help="Prefix for every collection name.")),
    (("--partitions",), dict(envvar="S2W_PARTITIONS", type=int)),
    (("--batch-size",), dict(envvar="S2W_BATCH_SIZE", type=int, help="Changes per job / rows per page.")),
    (("--lease-seconds",), dict(envvar="S2W_LEASE_SECONDS", type=float)),
    (("--job-timeout",), dict(envvar="S2W_JOB_TIMEOUT", type=float)),
    (("--max-retries",), dict(envvar="S2W_MAX_RETRIES", type=int)),
    (("--retry-delay",), dict(envvar="S2W_RETRY_DELAY", type=float)),
    (("--backoff-max",), dict(envvar="S2W_BACKOFF_MAX", type=float)),
    (("--poll-interval",), dict(envvar="S2W_POLL_INTERVAL", type=float)),
    (("--config", "config_file"), dict(envvar="S2W_CONFIG", type=click.Path(dir_okay=False), help="Settings TOML file.")),
    (("--log-level",), dict(envvar="S2W_LOG_LEVEL", default="INFO", show_default=True)),
    (("--log-file",), dict(envvar="S2W_LOG_FILE", type=click.Path(dir_okay=False))),
]
_INT_FROM_FLOAT = {"job_timeout"}
_NOT_SETTINGS = {"config_file", "log_level", "log_file"}


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options; the command receives ``settings`` (built lazily) instead."""
    for decls, kwargs in reversed(_CONNECTION_OPTIONS):
        func = click.option(*decls, default=kwargs.pop("default", None), **kwargs)(func)

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        from sqlite_to_weaviate.config_sources import build_settings
        from sqlite_to_weaviate.logs import configure_logging

        explicit = {}
        for decls, _ in _CONNECTION_OPTIONS:
            name = decls[-1] if not decls[-1].startswith("--") else decls[0][2:].replace("-", "_")
            value = kwargs.pop(name)
            if name not in _NOT_SETTINGS:
                explicit[name] = int(value) if name in _INT_FROM_FLOAT and value is not None else value
            else:
                kwargs.setdefault("_" + name, value)
        configure_logging(kwargs.pop("_log_level") or "INFO", kwargs.pop("_log_file"))
        config_file = kwargs.pop("_config_file")
        settings = build_settings(explicit, Path(config_file) if config_file else None)
        return func(settings=settings, **kwargs)

    return wrapper


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Expected failures become one line and exit code 3 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except S2WError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except Exception as exc:  # noqa: BLE001 - connection failures from client libraries
            import redis
            import weaviate.exceptions

            if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, weaviate.exceptions.WeaviateConnectionError,
                                weaviate.exceptions.WeaviateStartUpError)):
                click.echo(f"error: cannot reach a service: {type(exc).__name__}: {exc}", err=True)
                sys.exit(EXIT_CANNOT_RUN)
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, disk full: nothing was committed
                click.echo(f"error: SQLite refused the operation: {exc} (nothing was changed)", err=True)
                sys.exit(EXIT_CANNOT_RUN)
            raise

    return wrapper
