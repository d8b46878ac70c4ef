"""The ``DATETIME`` column type of the chat schema, holding ISO 8601 text.

SQLAlchemy's own ``DateTime`` on SQLite writes ``YYYY-MM-DD HH:MM:SS.ffffff`` and drops
the time zone. The chat schema stores ISO 8601 text that may carry a zone (``updated_at``)
or be SQLite's ``CURRENT_TIMESTAMP`` (UTC, no zone), and the mapping reads both, so the
models keep the text exactly: aware datetimes are written with their offset, strings are
written as they are, and reads return aware or naive datetimes as stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.types import UserDefinedType


class IsoDateTime(UserDefinedType):
    """Renders as ``DATETIME`` (so the mapping infers ``date``); values are ISO 8601 text."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "DATETIME"

    def bind_processor(self, _dialect: Any):
        def process(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            return value

        return process

    def result_processor(self, _dialect: Any, _coltype: Any):
        def process(value: Any) -> Any:
            if isinstance(value, str):
                return datetime.fromisoformat(value)
            return value

        return process
