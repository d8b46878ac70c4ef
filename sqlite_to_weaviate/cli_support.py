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

class Integer(click.ParamType):
    """An integer option; ``nan``/``inf`` are refused as "not a finite number", 15.0 reads as 15."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            pass
        try:
            number = float(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a valid integer", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if number != int(number):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        return int(number)


def _click_type(field: Any) -> Any:
    from sqlite_to_weaviate.settings_base import value_type

    kind = value_type(field)
    if kind is bool:
        return click.BOOL
    if kind is int:
        return Integer()
    if kind is float:
        return finite()
    if issubclass(kind, Path):
        return click.Path(dir_okay=False)
    return click.STRING


def _settings_options() -> list[click.Option]:
    """One option per Settings field (flag, type, help with its env name and default)."""
    from sqlite_to_weaviate.settings import Settings
    from sqlite_to_weaviate.settings_base import env_names, flag_of, is_secret, knob_of

    options = []
    for name, field in Settings.model_fields.items():
        knob = knob_of(field)
        if not knob.cli:
            continue
        extra = [f"env {env_names(name, field)[0]}"]
        if field.default not in (None, "") and not field.is_required() and not is_secret(field):
            extra.append(f"default {field.default}")
        help_text = f"{knob.help} [{'; '.join(extra)}]"
        options.append(click.Option([flag_of(name, field), name], type=_click_type(field), default=None,
                                    help=help_text))
    return options


_PROCESS_OPTIONS = [  # how this process runs, not what the pipeline does
    click.Option(["--config", "config_file"], envvar="S2W_CONFIG", type=click.Path(dir_okay=False),
                 help="Settings TOML file (keys named like the settings).", show_envvar=True),
    click.Option(["--log-level"], envvar="S2W_LOG_LEVEL", default="INFO", show_default=True, show_envvar=True),
    click.Option(["--log-file"], envvar="S2W_LOG_FILE", type=click.Path(dir_okay=False), show_envvar=True),
]


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options; the command receives ``settings`` (built lazily) instead."""
    settings_options = _settings_options()
    names = [option.name for option in settings_options]
    flags = {option.name: option.opts[0] for option in settings_options}

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        from sqlite_to_weaviate.logs import configure_logging
        from sqlite_to_weaviate.settings import Settings

        given = {name: kwargs.pop(name) for name in names}
        config_file, log_level, log_file = kwargs.pop("config_file"), kwargs.pop("log_level"), kwargs.pop("log_file")
        try:
            configure_logging(log_level or "INFO", log_file)
        except OSError as exc:
            raise ConfigError(f"cannot write the log file {log_file!r}: {exc.strerror or exc}") from None
        try:
            settings = Settings.load(given, config_file=Path(config_file) if config_file else None,
                                     flag_origin=flags)
        except ConfigError as exc:  # a usage error: the line ends with where to look (--help)
            raise click.UsageError(str(exc), click.get_current_context(silent=True)) from None
        return func(settings=settings, **kwargs)

    params = getattr(func, "__click_params__", [])
    wrapper.__click_params__ = params + list(reversed(settings_options + _PROCESS_OPTIONS))  # type: ignore[attr-defined]
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
