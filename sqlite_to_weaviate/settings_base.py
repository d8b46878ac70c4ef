"""How a setting is declared, where its value comes from, and how a bad one is reported.

A setting is one annotated field of a :class:`SettingsModel` (``settings.py`` declares
them): its type and constraints validate it (pydantic), and its :class:`Knob` names its
help text, command-line flag, environment variable and accepted aliases. Everything else
is derived from that one declaration: the CLI options (``cli/options.py``), the ``S2W_*``
names read here, the keys of a TOML settings file, the environment handed to worker
processes (:meth:`SettingsModel.to_environ`) and the settings table in the README.

Precedence, highest first: flags / keyword arguments, environment variables, the TOML
settings file, the field's default. pydantic-settings supplies the machinery (sources
merged in that order); constructing a model directly (``Settings(sqlite_path=...)``) reads
only its arguments, never the environment, so configuration always flows in explicitly.

A bad value becomes one :class:`~sqlite_to_weaviate.errors.ConfigError` line that names
the setting, the value (never a secret's) and where it came from. A model's ``repr`` and
``str`` show secrets as ``Secret('***')`` and URLs without their passwords (:func:`shown`).
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.redaction import MASK, redact_url

ENV_PREFIX = "S2W_"
M = TypeVar("M", bound="SettingsModel")


@dataclass(frozen=True)
class Knob:
    """What a setting is called outside Python, and the one line of help that explains it.

    ``flag`` and ``env`` default to ``--field-name`` and ``S2W_FIELD_NAME``; ``aliases`` are
    other keys accepted as keyword arguments and in a settings file (each also read as
    ``S2W_ALIAS``); ``unit`` words the error for numbers ("seconds"); ``cli=False`` keeps
    the setting off the command line; ``worker=True`` puts it in the settings a job
    function reads inside an RQ worker (:func:`derive_model`).
    """

    help: str
    flag: str | None = None
    env: str | None = None
    aliases: tuple[str, ...] = ()
    unit: str = ""
    cli: bool = True
    worker: bool = False


def knob_of(field: FieldInfo) -> Knob:
    for item in field.metadata:
        if isinstance(item, Knob):
            return item
    raise TypeError(f"setting declared without a Knob: {field!r}")


def flag_of(name: str, field: FieldInfo) -> str:
    return knob_of(field).flag or "--" + name.replace("_", "-")


def env_names(name: str, field: FieldInfo) -> tuple[str, ...]:
    """Environment variables read for a setting, the first being the one exported."""
    knob = knob_of(field)
    first = knob.env or ENV_PREFIX + name.upper()
    rest = [ENV_PREFIX + alias.upper() for alias in knob.aliases]
    return tuple(dict.fromkeys([first, ENV_PREFIX + name.upper(), *rest]))


def value_type(field: FieldInfo) -> type:
    """The setting's type without ``| None`` (``Path | None`` -> ``Path``)."""
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = options[0] if len(options) == 1 else str
    return annotation if isinstance(annotation, type) else str


def is_secret(field: FieldInfo) -> bool:
    from sqlite_to_weaviate.weaviate_adapter import Secret

    return issubclass(value_type(field), Secret)


def load_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's contents, or a ConfigError naming the file and what is wrong with it."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {str(path)!r} is a directory, not a file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not valid TOML: {exc}") from None


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(valid))}"


class _FieldNames(PydanticBaseSettingsSource):
    """A source whose keys are field names (aliases resolved), so precedence is by source."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any], origin: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.values = dict(values)
        self.origin = dict(origin)  # field name -> where the value came from, for error messages

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def environ_source(model: type["SettingsModel"], environ: Mapping[str, str]) -> _FieldNames:
    """``S2W_*`` variables (an empty variable counts as unset)."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, field in model.model_fields.items():
        for env in env_names(name, field):
            if environ.get(env) not in (None, ""):
                values[name] = environ[env].strip()
                origin[name] = env
                break
    return _FieldNames(model, values, origin)


def file_source(model: type["SettingsModel"], path: Path) -> _FieldNames:
    """A TOML settings file: keys named like the fields (or their aliases), at the top level
    or under one of the model's ``file_sections`` tables."""
    data = load_toml(path, model.file_what)
    for section in model.file_sections:
        if isinstance(data.get(section), dict):
            data = data[section]
            break
    names = model.accepted_names()
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{model.file_what} {str(path)!r}: unknown key {key!r}{_suggest(key, list(names))}")
        values[names[key]] = value
    return _FieldNames(model, values, {name: f"{model.file_what} {str(path)!r}" for name in values})


_SECRET_MARKERS = ("secret", "key", "password", "token")


def shown(name: str, value: Any) -> Any:
    """A setting as a repr may show it: the password of a ``*_url`` masked, a plain string
    under a secret-looking name (``job_secret`` in ``settings_overrides``) as ``***``, the
    same inside mappings. A :class:`~sqlite_to_weaviate.weaviate_adapter.Secret` masks itself."""
    if isinstance(value, Mapping):
        return {key: shown(str(key), item) for key, item in value.items()}
    if isinstance(value, str):
        if name.endswith("_url"):
            return redact_url(value)
        if any(marker in name.lower() for marker in _SECRET_MARKERS):
            return MASK
    return value


class SettingsModel(BaseSettings):
    """An immutable, validated set of settings; see the module docstring."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", populate_by_name=True, validate_default=False)

    file_what: ClassVar[str] = "settings file"
    file_sections: ClassVar[tuple[str, ...]] = ("sqlite_to_weaviate",)

    def __init__(self, **values: Any) -> None:
        """Validate ``values`` (keyword arguments only; nothing is read from the environment)."""
        build = values.pop("_build_sources", None)
        if build is None:
            values = self._canonical(values)
        try:
            super().__init__(_build_sources=build or ((InitSettingsSource(type(self), values),), values))
        except ValidationError as exc:
            origins = {}
            if build is not None:
                for source in build[0]:
                    if isinstance(source, _FieldNames):
                        origins = {**source.origin, **origins}
            raise ConfigError(explain(type(self), exc, origins)) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Any, env_settings: Any,
                                   dotenv_settings: Any, file_secret_settings: Any) -> tuple[Any, ...]:
        return (init_settings,)  # see __init__: only what is passed

    @classmethod
    def accepted_names(cls) -> dict[str, str]:
        """Every key accepted for a field (its name and aliases) -> the field name."""
        names = {}
        for name, field in cls.model_fields.items():
            names[name] = name
            for alias in knob_of(field).aliases:
                names[alias] = name
        return names

    @classmethod
    def _canonical(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        names = cls.accepted_names()
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key not in names:
                raise ConfigError(f"unknown setting {key!r}{_suggest(key, list(names))}")
            out[names[key]] = value
        return out

    @classmethod
    def load(cls: type[M], flags: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None,
             config_file: str | Path | None = None, flag_origin: Mapping[str, str] | None = None,
             fallback: Mapping[str, Any] | None = None) -> M:
        """Settings from ``flags`` (None = not given) > ``environ`` (default: the process's)
        > ``config_file`` > ``fallback`` (a caller's defaults for required fields, e.g. a
        worker's ``sqlite_path=None``) > defaults."""
        given = cls._canonical({k: v for k, v in (flags or {}).items() if v is not None})
        init = _FieldNames(cls, given, {name: (flag_origin or {}).get(name, name) for name in given})
        sources: list[PydanticBaseSettingsSource] = [init, environ_source(cls, os.environ if environ is None else environ)]
        if config_file:
            sources.append(file_source(cls, Path(config_file)))
        if fallback:
            sources.append(_FieldNames(cls, cls._canonical(fallback), {}))
        return cls(_build_sources=(tuple(sources), given))

    def __repr_args__(self) -> Any:
        """What ``repr()`` and ``str()`` show: every field, through :func:`shown`."""
        for name, value in super().__repr_args__():
            yield name, (shown(name, value) if name else value)

    def replace(self: M, **changes: Any) -> M:
        """A copy with ``changes`` applied and validated again."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update(type(self)._canonical(changes))
        return type(self)(**values)

    def to_environ(self) -> dict[str, str]:
        """``S2W_*`` variables that reproduce these settings in another process (secrets
        revealed: pass them only through an environment, never argv)."""
        env = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            env[env_names(name, field)[0]] = value.reveal() if is_secret(field) else str(value)
        return env

    @classmethod
    def environ_names(cls) -> set[str]:
        return {env for name, field in cls.model_fields.items() for env in env_names(name, field)}


_NUMBER_WORDS = {int: "an integer", float: "a number"}


def _non_finite(value: Any) -> bool:
    """nan and the infinities (also as text from the environment), which fail ``> 0`` first."""
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def explain(model: type[SettingsModel], exc: ValidationError, origins: Mapping[str, str]) -> str:
    """The first validation error as one line naming the setting, the value and its source."""
    err = exc.errors(include_url=False)[0]
    loc = [str(part) for part in err["loc"]]
    name = loc[0] if loc else ""
    field = model.model_fields.get(model.accepted_names().get(name, name))
    kind, ctx = err["type"], err.get("ctx") or {}
    shown = "(hidden)" if field is not None and is_secret(field) else repr(err.get("input"))
    if field is None or kind == "value_error" and not loc:
        message = str(ctx.get("error", err["msg"]))
        return message
    vtype = value_type(field)
    unit = knob_of(field).unit
    noun = f"number of {unit}" if unit else {int: "integer", float: "number"}.get(vtype, "value")
    if kind == "missing":
        envs = env_names(name, field)
        return f"no {name} given: pass {flag_of(name, field)} (or set {envs[0]})"
    if kind == "finite_number" or _non_finite(err.get("input")):
        message = f"{name} must be a finite {noun}, got {shown}"
    elif kind in ("greater_than", "greater_than_equal"):
        bound = ctx.get("gt", ctx.get("ge"))
        if (kind == "greater_than" and bound == 0) or (kind == "greater_than_equal" and bound == 1 and vtype is int):
            message = f"{name} must be a positive {noun}, got {shown}"
        else:
            article = "an" if noun[0] in "aeiou" else "a"
            message = f"{name} must be {article} {noun} {'>' if kind == 'greater_than' else '>='} {bound:g}, got {shown}"
    elif kind in ("int_parsing", "int_from_float", "int_type", "float_parsing", "float_type", "bool_parsing"):
        wanted = {"int": "int", "flo": "number", "boo": "yes/no"}[kind[:3]]
        message = f"{name}: cannot read {shown} as {wanted}"
    elif kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
    else:
        message = f"{name}: {err['msg'][0].lower()}{err['msg'][1:]}, got {shown}"
    origin = origins.get(name)
    return f"{message} (from {origin})" if origin and origin != name else message


def derive_model(model: type[M], name: str, keep: Any, doc: str) -> type[SettingsModel]:
    """A model with the fields of ``model`` whose Knob passes ``keep`` (same types, defaults,
    constraints and names): a subset is declared once, in the full model."""
    from pydantic import create_model

    fields: dict[str, Any] = {n: (f.annotation, f) for n, f in model.model_fields.items() if keep(knob_of(f))}
    derived = create_model(name, __base__=SettingsModel, __doc__=doc, __module__=model.__module__, **fields)
    return derived


def markdown_table(model: type[SettingsModel]) -> str:
    """The settings as the README shows them: flag, environment variable, default, meaning."""
    rows = ["| option | env | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        knob = knob_of(field)
        if not knob.cli:
            continue
        default = "(required)" if field.is_required() else ("" if field.default in (None, "") else f"`{field.default}`")
        meaning = knob.help.rstrip(".") + (f" ({knob.unit})." if knob.unit else ".")
        rows.append(f"| `{flag_of(name, field)}` | `{env_names(name, field)[0]}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"
