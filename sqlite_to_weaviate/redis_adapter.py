"""Connect to Redis from a URL with a clear error for a malformed one.

Redis is only ever a work queue here; nothing in it is the source of truth. Its URL may
carry passwords, so messages quote it through :func:`redact_url`.

Besides ``redis://``, ``rediss://`` and ``unix://``, a Redis watched by Sentinel is given
as one URL (redis-py and rq have no URL form for it, so it is parsed here)::

    redis+sentinel://[[username]:password@]host1[:26379][,host2[:26379]...]/service[/db][?options]
    rediss+sentinel://...        (TLS to the Redis servers)

``service`` is the name the sentinels monitor (``sentinel monitor <service> ...``), ``db``
the database number (default 0), and ``username``/``password`` those of the Redis
servers. Options: ``sentinel_username`` and ``sentinel_password`` when the sentinels
themselves require auth. The client asks the sentinels for the current primary and asks
again whenever a connection fails or finds a demoted primary, so a failover costs a
second or two of errors that every component already retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.redaction import redact_url

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_SENTINEL_PORT = 26379
_SENTINEL_OPTIONS = {"sentinel_username", "sentinel_password"}
_EXAMPLE = "redis+sentinel://127.0.0.1:26379,127.0.0.2:26379/mymaster/0"


class _Hidden(str):
    """A password that never shows in a repr."""

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL (passwords hidden from repr)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False


def _fail(url: str, problem: str) -> ConfigError:
    return ConfigError(f"redis_url {redact_url(url)!r}: {problem} (e.g. {_EXAMPLE})")


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse a Sentinel URL or raise ConfigError naming what is wrong."""
    text = (url or "").strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in SENTINEL_SCHEMES:
        raise _fail(text, f"scheme must be one of {', '.join(s + '://' for s in SENTINEL_SCHEMES)}")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        userinfo, hosts = "", netloc
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")  # "user@" alone: a user without password, as in redis://
        username = unquote(user) or None
        password = _Hidden(unquote(secret)) if colon and secret else None
    sentinels = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            raise _fail(text, "empty sentinel address in the host list")
        if item.startswith("["):  # [ipv6]:port
            host, _, port_text = item[1:].partition("]")
            port_text = port_text.removeprefix(":")
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise _fail(text, f"sentinel address {item!r} has no host")
        if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise _fail(text, f"sentinel address {item!r}: port must be a number from 1 to 65535")
        sentinels.append((host, int(port_text) if port_text else DEFAULT_SENTINEL_PORT))
    parts = [unquote(p) for p in path.split("/")] if path else []
    if not parts or not parts[0]:
        raise _fail(text, "no service name: add /<name the sentinels monitor> after the sentinel addresses")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise _fail(text, "the path must be /<service>[/<db number>]")
    options = parse_qs(query, keep_blank_values=True)
    unknown = set(options) - _SENTINEL_OPTIONS
    if unknown:
        raise _fail(text, f"unknown option(s) {sorted(unknown)}; allowed: {sorted(_SENTINEL_OPTIONS)}")
    sentinel_password = options.get("sentinel_password", [None])[-1]
    return SentinelURL(
        sentinels=tuple(sentinels), service=parts[0], db=int(parts[1]) if len(parts) == 2 else 0,
        username=username, password=password,
        sentinel_username=options.get("sentinel_username", [None])[-1] or None,
        sentinel_password=_Hidden(sentinel_password) if sentinel_password else None,
        tls=scheme.startswith("rediss"),
    )


def validate_redis_url(url: str) -> str:
    """``url`` stripped, or a ConfigError naming the problem (and the URL without its passwords)."""
    text = (url or "").strip()
    if text.split("://", 1)[0] in SENTINEL_SCHEMES:
        parse_sentinel_url(text)
        return text
    parts = urlsplit(text)
    shown = redact_url(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"redis_url {shown!r}: scheme must be redis://, rediss://, unix:// or redis+sentinel:// "
                          "(e.g. redis://127.0.0.1:6379/0)")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"redis_url {shown!r} has no host (e.g. redis://127.0.0.1:6379/0)")
    try:
        parts.port
    except ValueError as exc:
        raise ConfigError(f"redis_url {shown!r}: invalid port ({redact_url(str(exc))})") from None
    return text


class _SentinelConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that drops itself when a read is interrupted.

    redis-py 8.1's ``SentinelManagedConnection.read_response`` defaults
    ``disconnect_on_error`` to False, unlike every other connection class: a read cut
    short by an exception (RQ's SIGTERM handler raises ``StopRequested`` inside a blocking
    BLPOP; a job timeout raises inside any command) leaves the reply pending, the
    connection goes back to the pool, and the *next* command reads the old reply (seen:
    a worker's shutdown hung on its own BLPOP; upstream: redis/redis-py#4292, open).
    """

    def read_response(self, *args: Any, disconnect_on_error: bool = True, **kwargs: Any) -> Any:
        return super().read_response(*args, disconnect_on_error=disconnect_on_error, **kwargs)


class _SentinelSSLConnection(SentinelManagedSSLConnection):
    __doc__ = _SentinelConnection.__doc__

    def read_response(self, *args: Any, disconnect_on_error: bool = True, **kwargs: Any) -> Any:
        return super().read_response(*args, disconnect_on_error=disconnect_on_error, **kwargs)


def connect_redis(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client that fails within ``timeout_s`` when Redis is unreachable instead of hanging.

    For a Sentinel URL: a client of the current primary, found through the sentinels and
    found again after a failover (``redis.sentinel.MasterNotFoundError`` while there is
    none is a ``redis.ConnectionError``, which every caller already treats as an outage).
    """
    text = validate_redis_url(url)
    if text.split("://", 1)[0] not in SENTINEL_SCHEMES:
        return redis.Redis.from_url(text, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                    health_check_interval=30)
    spec = parse_sentinel_url(text)
    sentinel_auth = {k: v for k, v in (("username", spec.sentinel_username),
                                       ("password", spec.sentinel_password)) if v}
    sentinel = Sentinel(
        list(spec.sentinels), socket_timeout=min(timeout_s, 1.0), socket_connect_timeout=min(timeout_s, 1.0),
        sentinel_kwargs=dict(sentinel_auth, socket_timeout=min(timeout_s, 1.0),
                             socket_connect_timeout=min(timeout_s, 1.0)),
    )
    return sentinel.master_for(
        spec.service, db=spec.db, username=spec.username, password=str(spec.password) if spec.password else None,
        socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30,
        connection_class=_SentinelSSLConnection if spec.tls else _SentinelConnection,
    )
