"""Structured logging: JSON when not on a TTY, readable console output on one.

Each batch of work binds a correlation id (``batch_id``) so one change can be followed
from the relay through the worker into Weaviate. A redaction processor masks any field
whose name looks like a secret, so API keys never reach a log line whatever a caller binds.
"""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path
from typing import Any

import structlog

_SECRET_MARKERS = ("api_key", "apikey", "password", "secret", "token", "authorization")


def redact_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: replace values of secret-looking keys with '***'."""
    for key in list(event):
        if any(marker in key.lower() for marker in _SECRET_MARKERS) and event[key] is not None:
            event[key] = "***"
    return event


def configure_logging(level: str = "INFO", log_file: str | Path | None = None, *, json: bool | None = None) -> None:
    """Configure structlog and stdlib logging for a CLI process (call once at start-up)."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        from sqlite_to_weaviate.errors import ConfigError

        raise ConfigError(f"log_level {level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    stream = open(log_file, "a", buffering=1) if log_file else sys.stderr  # noqa: SIM115 - process lifetime
    use_json = (not stream.isatty()) if json is None else json
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=stream)


def new_correlation_id() -> str:
    """A short id for one batch of work, carried in logs and job metadata."""
    return uuid.uuid4().hex[:12]


def get_logger(name: str, **bind: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name).bind(**bind)
