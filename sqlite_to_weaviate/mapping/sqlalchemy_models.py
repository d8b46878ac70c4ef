"""Default mapping from SQLAlchemy models instead of a live database file.

The models are rendered to DDL by SQLAlchemy's SQLite dialect in a private in-memory
database and reflected from there, so models and live files follow exactly the same
rules (declared types as SQLAlchemy writes them: Boolean -> BOOLEAN, DateTime ->
DATETIME, JSON -> JSON, LargeBinary -> BLOB, ...).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .config_file import MappingConfig
from .model import Mapping
from .reflect import reflect_mapping


def reflect_mapping_from_models(metadata: Any, config: MappingConfig | None = None) -> Mapping:
    """Mapping for a ``sqlalchemy.MetaData`` (or a declarative ``Base.metadata``)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    raw = sqlite3.connect(":memory:", check_same_thread=False)
    engine = create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool)
    try:
        metadata.create_all(engine)
        return reflect_mapping(raw, config)
    finally:
        engine.dispose()
        raw.close()
