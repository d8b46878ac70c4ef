"""Connect to Weaviate from a URL, failing fast with a message that names the problem.

The tool takes one URL per store. Weaviate also needs a gRPC port; it rides along as a
query parameter (``http://127.0.0.1:8080?grpc_port=50051``, default 50051) so a single
setting describes the server. The API key is held in a :class:`Secret` so it never
appears in a repr or a log line.
"""

from __future__ import annotations

import hmac
import warnings
from typing import Any
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.redaction import redact_url

DEFAULT_GRPC_PORT = 50051


class Secret:
    """A secret string (an API key, a password, the job secret) that never prints itself.

    Deliberately *not* a ``str``: a ``str`` subclass leaks through ``json.dumps``,
    ``"".join``, concatenation and f-strings. Here ``str()``, ``repr()`` and ``format()``
    all give ``***``, JSON encoders refuse the object, and the value comes out only
    through :meth:`reveal`, where it is handed to the one library that needs it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: "str | Secret") -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a secret must be a string, got {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return format("***", spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other = other.reveal()
        if not isinstance(other, str):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other.encode("utf-8"))

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """A Secret, or a string validated and held as one (so settings reprs hide it too)."""
        from pydantic_core import PydanticCustomError, core_schema

        def validate(value: Any) -> "Secret":
            if isinstance(value, cls):
                return value
            if isinstance(value, str):
                return cls(value)
            raise PydanticCustomError("string_type", "Input should be a valid string")

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(lambda value: "***"),
        )


@dataclass(frozen=True)
class WeaviateEndpoint:
    scheme: str
    host: str
    http_port: int
    grpc_port: int
    api_key: Secret | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.http_port}?grpc_port={self.grpc_port}"

    @classmethod
    def parse(cls, url: str, api_key: str | None = None) -> "WeaviateEndpoint":
        """Parse and validate a Weaviate URL; raise ConfigError saying what is wrong."""
        if not url or not isinstance(url, str):
            raise ConfigError("weaviate_url is empty: give e.g. http://127.0.0.1:8080")
        parts = urlsplit(url.strip())
        url = redact_url(url)  # every message below names the URL without a password
        if parts.scheme not in ("http", "https"):
            raise ConfigError(
                f"weaviate_url {url!r}: scheme must be http or https (got {parts.scheme or 'none'!r}); "
                "example: http://127.0.0.1:8080?grpc_port=50051"
            )
        if not parts.hostname:
            raise ConfigError(f"weaviate_url {url!r} has no host; example: http://127.0.0.1:8080")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 8080)
        except ValueError as exc:
            raise ConfigError(f"weaviate_url {url!r}: invalid port ({exc})") from None
        query = parse_qs(parts.query)
        unknown = set(query) - {"grpc_port"}
        if unknown:
            raise ConfigError(f"weaviate_url {url!r}: unknown query parameter(s) {sorted(unknown)}; only grpc_port is allowed")
        grpc_port = DEFAULT_GRPC_PORT
        if "grpc_port" in query:
            raw = query["grpc_port"][-1]
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ConfigError(f"weaviate_url {url!r}: grpc_port must be a port number, got {raw!r}")
            grpc_port = int(raw)
        if grpc_port == port:
            raise ConfigError(f"weaviate_url {url!r}: grpc_port must differ from the HTTP port {port} "
                              "(Weaviate serves gRPC on its own port, 50051 by default)")
        return cls(parts.scheme, parts.hostname, port, grpc_port, Secret(api_key) if api_key else None)

    def connect(self, *, timeout_s: float = 30.0, insert_timeout_s: float | None = None):  # -> weaviate.WeaviateClient
        """Open a v4 client. Init checks are skipped (they call PyPI); readiness is checked instead.

        ``insert_timeout_s`` bounds every write request; workers tie it to their lease so
        that a request still in flight when the lease ends is cut off by its deadline.
        """
        import weaviate
        from weaviate.classes.init import AdditionalConfig, Auth, Timeout

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = weaviate.connect_to_custom(
                http_host=self.host, http_port=self.http_port, http_secure=self.scheme == "https",
                grpc_host=self.host, grpc_port=self.grpc_port, grpc_secure=self.scheme == "https",
                auth_credentials=Auth.api_key(self.api_key.reveal()) if self.api_key else None,
                additional_config=AdditionalConfig(timeout=Timeout(init=10, query=timeout_s, insert=insert_timeout_s or timeout_s * 4)),
                skip_init_checks=True,
            )
        return client


def connect_weaviate(url: str, api_key: str | None = None):  # -> weaviate.WeaviateClient
    """Shortcut: parse ``url`` and connect."""
    return WeaviateEndpoint.parse(url, api_key).connect()
