"""What every command shares: connection options, one-line errors, exit codes.

Kept apart from :mod:`sqlite_to_weaviate.cli` so subpackage commands (backfill, verify,
operate) can import it without importing the command group that registers them.

Exit codes, for cron jobs and alerting:

  0  success / healthy          1  differences or problems found (status, verify)
  2  differences found and repaired (verify --repair)
  3  could not run: bad configuration, unreachable service, invalid input

Codes 1 and 2 mean something only when the command ran to the end, so *every* failure to
run — a click usage error (which click itself would exit with 2), a refused setting, an
error from SQLite, Weaviate or Redis, even a bug — is one ``error:`` line on stderr and
exit code 3, never a traceback that a cron job would read as 1.
"""

from __future__ import annotations

import errno
import functools
import math
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sqlite_to_weaviate.errors import ConfigError, S2WError

EXIT_OK, EXIT_PROBLEMS, EXIT_REPAIRED, EXIT_CANNOT_RUN = 0, 1, 2, 3


class FiniteFloat(click.FloatRange):
    """A float option that refuses nan, inf and -inf (which slip through every ``<``/``>`` check)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def finite(min: float | None = None, *, min_open: bool = False) -> FiniteFloat:
    """``type=`` for a float option: finite, and ``>= min`` (``> min`` with ``min_open``)."""
    return FiniteFloat(min=min, min_open=min_open)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class OneLineErrors:
    """Mixin for click commands and groups: usage errors become one line and exit code 3.

    Click exits with 2 on a usage error, which for ``verify`` means "repaired"; a declined
    confirmation would exit with 1 ("differences found"). Both mean "did not run" here.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)  # type: ignore[misc]
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)  # type: ignore[misc]
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            click.echo(f"error: no command given (see '{exc.ctx.command_path if exc.ctx else ''} --help')", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or self.name)  # type: ignore[attr-defined]
            hint = f" (see '{where} --help')"
            click.echo(f"error: {_one_line(exc.format_message())}{hint}", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except click.ClickException as exc:
            click.echo(f"error: {_one_line(exc.format_message())}", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except click.Abort:
            click.echo("error: aborted; nothing was changed", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except OSError as exc:
            if exc.errno != errno.EPIPE:  # anything else was a failure to run (friendly_errors covers commands)
                raise
            sys.exit(EXIT_PROBLEMS)  # stdout closed early (| head): as click does
        sys.exit(result if isinstance(result, int) else EXIT_OK)


class Command(OneLineErrors, click.Command):
    """A command whose usage errors exit with 3 even when invoked on its own (tests, Python)."""


class Group(OneLineErrors, click.Group):
    command_class = Command
    group_class = type  # subgroups are Groups too

_LEVELS = ("ONE", "QUORUM", "ALL")  # settings.CONSISTENCY_LEVELS (not imported: this module loads first)
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
    (("--lease-seconds",), dict(envvar="S2W_LEASE_SECONDS", type=finite())),
    (("--job-timeout",), dict(envvar="S2W_JOB_TIMEOUT", type=finite())),
    (("--max-retries",), dict(envvar="S2W_MAX_RETRIES", type=int)),
    (("--retry-delay",), dict(envvar="S2W_RETRY_DELAY", type=finite())),
    (("--backoff-max",), dict(envvar="S2W_BACKOFF_MAX", type=finite())),
    (("--poll-interval",), dict(envvar="S2W_POLL_INTERVAL", type=finite())),
    # scale-out: a replicated Weaviate cluster (docs/scale-out.md, docs/operations.md)
    (("--replication-factor",), dict(envvar="S2W_REPLICATION_FACTOR", type=int,
                                     help="Copies of every object; collections are created with it (default 1).")),
    (("--write-consistency",), dict(envvar="S2W_WRITE_CONSISTENCY", type=click.Choice(_LEVELS, case_sensitive=False),
                                    help="Replicas that must confirm each write (default QUORUM).")),
    (("--verify-consistency",), dict(envvar="S2W_VERIFY_CONSISTENCY", type=click.Choice(_LEVELS, case_sensitive=False),
                                     help="Replicas verify reads before a difference counts (default ALL).")),
    (("--config", "config_file"), dict(envvar="S2W_CONFIG", type=click.Path(dir_okay=False), help="Settings TOML file.")),
    (("--log-level",), dict(envvar="S2W_LOG_LEVEL", default="INFO", show_default=True)),
    (("--log-file",), dict(envvar="S2W_LOG_FILE", type=click.Path(dir_okay=False))),
]
_INT_FROM_FLOAT = {"job_timeout"}
_NOT_SETTINGS = {"config_file", "log_level", "log_file"}


def connection_options(func: Callable[..., Any], *, needs_database: bool = True) -> Callable[..., Any]:
    """Add the shared options; the command receives ``settings`` (built lazily) instead.

    ``needs_database=False`` (the worker): no ``--sqlite-url`` is required, and
    ``settings.sqlite_path`` is None when none is given.
    """
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
        log_file = kwargs.pop("_log_file")
        try:
            configure_logging(kwargs.pop("_log_level") or "INFO", log_file)
        except OSError as exc:
            raise ConfigError(f"cannot write the log file {log_file!r}: {exc.strerror or exc}") from None
        config_file = kwargs.pop("_config_file")
        settings = build_settings(explicit, Path(config_file) if config_file else None,
                                  require_database=needs_database)
        return func(settings=settings, **kwargs)

    return wrapper


def _weaviate_message(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    text = _one_line(str(exc))[:300]
    if status in (401, 403) or "401" in text or "403" in text or "nauthenticated" in text or "nauthorized" in text:
        return ("Weaviate rejected the credentials: check the API key (--api-key / S2W_WEAVIATE_API_KEY) "
                f"and its permissions ({type(exc).__name__})")
    if status == 404 or "404" in text:
        return ("Weaviate answered 404 Not Found: is --weaviate-url the address of a Weaviate server, "
                f"and does the collection exist? ({type(exc).__name__}: {text})")
    return f"Weaviate refused the request: {type(exc).__name__}: {text}"


def failure_message(exc: BaseException) -> str:
    """One line (without ``error:``) saying why a command could not run."""
    import redis
    import weaviate.exceptions

    if isinstance(exc, S2WError):
        return _one_line(str(exc))
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, weaviate.exceptions.WeaviateConnectionError,
                        weaviate.exceptions.WeaviateStartUpError)):
        return f"cannot reach a service: {type(exc).__name__}: {_one_line(str(exc))[:300]}"
    if isinstance(exc, weaviate.exceptions.WeaviateBaseError):
        return _weaviate_message(exc)
    if isinstance(exc, redis.RedisError):
        return f"Redis refused the request: {type(exc).__name__}: {_one_line(str(exc))[:300]}"
    if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, disk full: nothing was committed
        return f"SQLite refused the operation: {_one_line(str(exc))} (nothing was changed)"
    if isinstance(exc, sqlite3.DatabaseError):  # a corrupt page ("database disk image is malformed"), ...
        return (f"SQLite cannot read the database: {_one_line(str(exc))}; check it with PRAGMA integrity_check and "
                "restore it from a backup if it is damaged (nothing was changed)")
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {_one_line(str(exc))}"
    return (f"unexpected {type(exc).__name__}: {_one_line(str(exc))[:300]} "
            "(a bug: please report it; --log-level DEBUG logs the traceback)")


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Every failure to run becomes one ``error:`` line on stderr and exit code 3, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise  # usage errors, confirmations, --help: the command class handles them (OneLineErrors)
        except Exception as exc:  # noqa: BLE001 - see failure_message
            if not isinstance(exc, S2WError):  # logging is configured by now (a failure there is a ConfigError)
                from sqlite_to_weaviate.logs import get_logger

                get_logger("s2w.cli").debug("could not run", exc_info=True)
            click.echo(f"error: {failure_message(exc)}", err=True)
            sys.exit(EXIT_CANNOT_RUN)

    return wrapper
