"""Presets shipped with the package: the original migration design's mapping and schema."""

from __future__ import annotations

from importlib import resources

from ..config_file import MappingConfig, parse_mapping_config


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def seed_preset_config() -> MappingConfig:
    """Mapping config for the chat-application schema in ``seed_schema.sql``."""
    return parse_mapping_config(_read("seed.toml"), "<preset seed.toml>")


def seed_preset_toml() -> str:
    """The preset's TOML text, to copy and edit as a starting point."""
    return _read("seed.toml")


def seed_schema_sql() -> str:
    """CREATE TABLE statements of the six tables the seed preset maps."""
    return _read("seed_schema.sql")
