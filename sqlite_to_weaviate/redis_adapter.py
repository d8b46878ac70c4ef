"""Connect to Redis from a URL with a clear error for a malformed one.

Redis is only ever a work queue here; nothing in it is the source of truth. Its URL may
carry the password, so messages quote it through :func:`redact_url`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.redaction import redact_url


def validate_redis_url(url: str) -> str:
    """``url`` stripped, or a ConfigError naming the problem (and the URL without its password)."""
    parts = urlsplit((url or "").strip())
    shown = redact_url(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"redis_url {shown!r}: scheme must be redis://, rediss:// or unix:// (e.g. redis://127.0.0.1:6379/0)")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"redis_url {shown!r} has no host (e.g. redis://127.0.0.1:6379/0)")
    try:
        parts.port
    except ValueError as exc:
        raise ConfigError(f"redis_url {shown!r}: invalid port ({redact_url(str(exc))})") from None
    return url.strip()


def connect_redis(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client that fails within ``timeout_s`` when Redis is unreachable instead of hanging."""
    return redis.Redis.from_url(
        validate_redis_url(url), socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )
