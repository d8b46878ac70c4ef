"""Where settings come from, and which source wins.

Precedence, highest first: command-line flags, environment variables (``S2W_*``), the
settings file (``--config``, TOML, keys named like the Settings fields), built-in
defaults. Unknown keys in the file are errors that name the key and suggest the closest
valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.settings import Settings

_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_ALIASES = {"sqlite_url": "sqlite_path", "api_key": "weaviate_api_key"}


def load_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's contents, or a ConfigError naming the file and what is wrong with it."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not valid TOML: {exc}") from None


def read_settings_file(path: Path) -> dict[str, Any]:
    data = load_toml(path, "settings file")
    section = data.get("sqlite_to_weaviate", data)
    out: dict[str, Any] = {}
    for key, value in section.items():
        name = _ALIASES.get(key, key)
        if name not in _FIELDS:
            close = difflib.get_close_matches(key, list(_FIELDS) + list(_ALIASES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(_FIELDS))}"
            raise ConfigError(f"settings file {str(path)!r}: unknown key {key!r}{hint}")
        out[name] = value
    return out


def build_settings(explicit: Mapping[str, Any], config_file: Path | None = None, *,
                   require_database: bool = True) -> Settings:
    """Merge sources into Settings; ``explicit`` holds flag/env values (None = not given).

    ``require_database=False`` is for workers, which never open the database file.
    """
    values: dict[str, Any] = read_settings_file(config_file) if config_file else {}
    for key, value in explicit.items():
        if value is not None:
            values[_ALIASES.get(key, key)] = value
    if "sqlite_path" not in values and not require_database:
        values["sqlite_path"] = None
    if "sqlite_path" not in values:
        raise ConfigError("no SQLite database given: pass --sqlite-url PATH (or set S2W_SQLITE_URL)")
    for name in ("sqlite_path", "mapping_file"):
        if values.get(name) is not None:
            values[name] = Path(str(values[name])) if name == "mapping_file" else values[name]
    try:
        return Settings(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid settings: {exc}") from None
