"""The options every command shares, derived from the settings model.

One click option per :class:`~sqlite_to_weaviate.settings.Settings` field: its flag, type
and help (with the environment variable and default) come from the field's declaration, so
a new setting appears on every command by itself. The values are resolved by
:meth:`Settings.load` (flag > ``S2W_*`` > ``--config`` > default), not by click, so the CLI
and the Python API agree on every source.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sqlite_to_weaviate.errors import ConfigError


class FiniteFloat(click.FloatRange):
    """A float option that refuses nan, inf and -inf (which slip through every ``<``/``>`` check)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()


def finite(min: float | None = None, *, min_open: bool = False) -> FiniteFloat:
    """``type=`` for a float option: finite, and ``>= min`` (``> min`` with ``min_open``)."""
    return FiniteFloat(min=min, min_open=min_open)


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


# Inputs that are read into a setting rather than being one.
_INPUT_OPTIONS = [
    click.Option(["--job-secret-file"], envvar="S2W_JOB_SECRET_FILE", type=click.Path(dir_okay=False),
                 show_envvar=True, help="File holding the job secret (instead of --job-secret / S2W_JOB_SECRET)."),
]


def load_settings(flags: dict[str, Any], *, config_file: str | Path | None = None,
                  job_secret_file: str | Path | None = None, flag_origin: dict[str, str] | None = None,
                  environ: dict[str, str] | None = None, needs_database: bool = True) -> Any:
    """:meth:`Settings.load` (flag > ``S2W_*`` > ``config_file`` > default), then the job
    secret read from ``job_secret_file``, which may not come with a secret given otherwise.

    ``needs_database=False`` (the worker): no ``--sqlite-url`` is required, and
    ``settings.sqlite_path`` is None when none is given."""
    from sqlite_to_weaviate.settings import Settings
    from sqlite_to_weaviate.writer.job_secret import read_job_secret_file

    settings = Settings.load(flags, environ=environ, config_file=config_file, flag_origin=flag_origin,
                             fallback=None if needs_database else {"sqlite_path": None})
    if job_secret_file is None:
        return settings
    if settings.job_secret is not None:
        raise ConfigError("both a job secret and a job secret file are given (--job-secret / S2W_JOB_SECRET and "
                          "--job-secret-file / S2W_JOB_SECRET_FILE); give one")
    return settings.replace(job_secret=read_job_secret_file(job_secret_file))


def settings_options(func: Callable[..., Any], *, needs_database: bool = True) -> Callable[..., Any]:
    """Add the shared options; the command receives ``settings`` (a validated Settings) instead.

    ``needs_database=False`` (the worker): ``--sqlite-url`` is optional (see :func:`load_settings`)."""
    derived = _settings_options()
    names = [option.name for option in derived]
    flags = {option.name: option.opts[0] for option in derived}

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        from sqlite_to_weaviate.logs import configure_logging

        given = {name: kwargs.pop(name) for name in names}
        config_file, log_level, log_file = kwargs.pop("config_file"), kwargs.pop("log_level"), kwargs.pop("log_file")
        job_secret_file = kwargs.pop("job_secret_file")
        try:
            configure_logging(log_level or "INFO", log_file)
        except OSError as exc:
            raise ConfigError(f"cannot write the log file {log_file!r}: {exc.strerror or exc}") from None
        try:
            settings = load_settings(given, config_file=Path(config_file) if config_file else None,
                                     job_secret_file=job_secret_file, flag_origin=flags,
                                     needs_database=needs_database)
        except ConfigError as exc:  # a usage error: the line ends with where to look (--help)
            raise click.UsageError(str(exc), click.get_current_context(silent=True)) from None
        return func(settings=settings, **kwargs)

    params = getattr(func, "__click_params__", [])
    shared = derived + _INPUT_OPTIONS + _PROCESS_OPTIONS
    wrapper.__click_params__ = params + list(reversed(shared))  # type: ignore[attr-defined]
    return wrapper
