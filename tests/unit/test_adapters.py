"""URL validation fails fast with a message that names the problem; secrets stay hidden."""

from __future__ import annotations

import pytest

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.logs import redact_secrets
from sqlite_to_weaviate.redis_adapter import validate_redis_url
from sqlite_to_weaviate.weaviate_adapter import WeaviateEndpoint


def test_weaviate_url_parsed_with_grpc_port():
    ep = WeaviateEndpoint.parse("http://127.0.0.1:8099?grpc_port=50099", api_key="zz-secret-zz")
    assert (ep.scheme, ep.host, ep.http_port, ep.grpc_port) == ("http", "127.0.0.1", 8099, 50099)
    assert "zz-secret-zz" not in repr(ep)  # api key masked in repr
    assert ep.api_key.reveal() == "zz-secret-zz"


def test_weaviate_url_defaults():
    ep = WeaviateEndpoint.parse("http://localhost")
    assert (ep.http_port, ep.grpc_port) == (8080, 50051)


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("", "empty"),
        ("localhost:8080", "scheme"),
        ("ftp://x:1", "scheme"),
        ("http://:8080", "no host"),
        ("http://h:99999", "invalid port"),
        ("http://h:1?grpc_port=abc", "grpc_port"),
        ("http://h:1?grcp_port=1", "unknown query"),
        ("http://h:8080?grpc_port=8080", "grpc_port must differ from the HTTP port 8080"),
    ],
)
def test_weaviate_url_errors_name_the_problem(url, fragment):
    with pytest.raises(ConfigError, match=fragment):
        WeaviateEndpoint.parse(url)


@pytest.mark.parametrize("url", ["http://x:1", "127.0.0.1:6379", "redis://:1/0"])
def test_redis_url_errors(url):
    with pytest.raises(ConfigError, match="redis_url"):
        validate_redis_url(url)


def test_log_redaction_masks_secret_fields():
    event = {"event": "x", "api_key": "s3cret", "weaviate_api_key": "s3cret", "rows": 3}
    out = redact_secrets(None, "info", dict(event))
    assert out["api_key"] == "***" and out["weaviate_api_key"] == "***" and out["rows"] == 3
