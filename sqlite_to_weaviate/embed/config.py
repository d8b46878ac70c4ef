"""Embedder and cache settings, as written in the mapping file.

They live in the mapping (``[embedders.<name>]``, ``[embedding_cache]``) rather than in
the pipeline settings because they describe *what a vector is*, like the columns it is
made from: the relay names the embedder of every vector it sends, and every worker reads
the same file to know what that name means. Secrets are never in the file: an API key is
named by the environment variable that holds it (``api_key_env``) and read into a
:class:`~sqlite_to_weaviate.weaviate_adapter.Secret` only by the process that calls the
API.

Parsing takes a reader (the mapping file's, :mod:`sqlite_to_weaviate.mapping.config_file`,
whose errors name the file, line, key and fix; or :class:`PlainReader` for a lone lookup).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

KINDS = ("local", "openai", "callable")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
DEFAULT_CACHE_COLLECTION = "S2wEmbeddingCache"
DEFAULT_CACHE_MAX_ENTRIES = 1_000_000
MAX_OPENAI_BATCH = 2048  # inputs per request, the API's limit

_COMMON = {"kind": "local | openai | callable", "batch_size": "inputs per model call"}
KIND_KEYS = {
    "local": _COMMON | {"model": "bundled model name", "path": "model directory", "max_tokens": "truncation"},
    "openai": _COMMON | {"url": "base URL", "model": "model name", "api_key_env": "env var with the key",
                         "dimensions": "output size", "requests_per_minute": "rate limit",
                         "tokens_per_minute": "rate limit", "timeout": "seconds per request",
                         "max_retries": "retries of a transient failure", "revision": "model version"},
    "callable": _COMMON | {"function": "module:function", "version": "model version"},
}
_CACHE_KEYS = {"collection": "", "max_entries": "", "max_age_days": ""}


@dataclass(frozen=True)
class EmbedderSpec:
    """One ``[embedders.<name>]`` block. Only the keys of its ``kind`` are set."""

    name: str
    kind: str
    batch_size: int
    model: str | None = None
    path: str | None = None
    max_tokens: int = 256
    url: str | None = None
    api_key_env: str | None = None
    dimensions: int | None = None
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout: float = 30.0
    max_retries: int = 6
    revision: str | None = None
    function: str | None = None
    version: str | None = None

    def declared_id(self) -> str | None:
        """The id known from the configuration alone (None for a local model given by path:
        its id includes the hash of its weights, computed when it is loaded)."""
        if self.kind == "openai":
            return f"openai:{self.model}" + (f"/{self.dimensions}" if self.dimensions else "") + \
                (f"@{self.revision}" if self.revision else "")
        if self.kind == "callable":
            return f"callable:{self.function}@{self.version}"
        if self.path is None:
            from .model_files import BUNDLED_MODELS

            return BUNDLED_MODELS[self.model or ""].embedder_id
        return None

    def embedder_id(self) -> str:
        """Embedder id including the model version: what the cache key and the object fingerprint use."""
        declared = self.declared_id()
        if declared is not None:
            return declared
        from .model_files import model_dir_id

        return model_dir_id(self.path or "")

    def api_key(self) -> Any:
        """The API key as a Secret (None without ``api_key_env``); a missing variable is an EmbedderConfigError."""
        if not self.api_key_env:
            return None
        from sqlite_to_weaviate.weaviate_adapter import Secret

        from .errors import EmbedderConfigError

        value = os.environ.get(self.api_key_env)
        if not value:
            raise EmbedderConfigError(f"embedder {self.name!r}: environment variable {self.api_key_env} "
                                      "(api_key_env) is not set in this process")
        return Secret(value)


@dataclass(frozen=True)
class CacheSpec:
    """``[embedding_cache]``: the Weaviate collection every worker shares, and its bound."""

    collection: str = DEFAULT_CACHE_COLLECTION
    max_entries: int = DEFAULT_CACHE_MAX_ENTRIES
    max_age_days: float | None = None


def parse_embedders(reader: Any, value: Any) -> dict[str, EmbedderSpec]:
    """``[embedders.*]`` -> name -> spec, every key checked."""
    if not isinstance(value, dict):
        raise reader.fail("embedders", f"expected a table, got {type(value).__name__}")
    specs = {}
    for name, block in value.items():
        path = f"embedders.{name}"
        if not NAME.fullmatch(name):
            raise reader.fail(path, f"invalid embedder name {name!r}", "use letters, digits, '_' and '-' (64 at most)")
        if not isinstance(block, dict):
            raise reader.fail(path, f"expected a table, got {type(block).__name__}")
        kind = reader.choice(block, "kind", path, KINDS)
        if kind is None:
            raise reader.fail(path, "missing key 'kind'", f"valid values: {', '.join(KINDS)}")
        reader.table(block, path, KIND_KEYS[kind])
        specs[name] = _spec(reader, name, kind, block, path)
    return specs


def _positive_int(reader: Any, data: dict[str, Any], key: str, path: str, default: int | None,
                  maximum: int | None = None) -> int | None:
    value = reader.get(data, key, path, int, default)
    if value is not None and (value < 1 or (maximum is not None and value > maximum)):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise reader.fail(f"{path}.{key}", f"must be a positive integer{bound}, got {value!r}")
    return value


def _positive_number(reader: Any, data: dict[str, Any], key: str, path: str, default: float | None) -> float | None:
    value = reader.get(data, key, path, (int, float), default)
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise reader.fail(f"{path}.{key}", f"must be a positive finite number, got {value!r}")
    return None if value is None else float(value)


def _spec(reader: Any, name: str, kind: str, block: dict[str, Any], path: str) -> EmbedderSpec:
    if kind == "local":
        from .model_files import BUNDLED_MODELS

        model = reader.get(block, "model", path, str)
        model_path = reader.get(block, "path", path, str)
        if (model is None) == (model_path is None):
            raise reader.fail(path, "set exactly one of 'model' and 'path'",
                              f"model = one of {sorted(BUNDLED_MODELS)} (fetched by scripts/setup), or path = a "
                              "sentence-transformers BERT directory")
        if model is not None and model not in BUNDLED_MODELS:
            raise reader.fail(f"{path}.model", f"unknown model {model!r}",
                              f"bundled models: {', '.join(sorted(BUNDLED_MODELS))}; or give path = DIR")
        return EmbedderSpec(name=name, kind=kind, batch_size=_positive_int(reader, block, "batch_size", path, 32) or 32,
                            model=model, path=model_path,
                            max_tokens=_positive_int(reader, block, "max_tokens", path, 256, 512) or 256)
    if kind == "openai":
        url = reader.get(block, "url", path, str)
        model = reader.get(block, "model", path, str)
        if not url or not re.match(r"https?://[^/\s]+", url):
            raise reader.fail(f"{path}.url" if url else path, "an openai embedder needs url = \"http(s)://host[:port]/v1\"")
        if not model:
            raise reader.fail(path, "missing key 'model'", "the model name the endpoint serves")
        key_env = reader.get(block, "api_key_env", path, str)
        if key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env):
            raise reader.fail(f"{path}.api_key_env", f"{key_env!r} is not an environment variable name",
                              "name the variable that holds the key, never the key itself")
        revision = reader.get(block, "revision", path, str)
        retries = reader.get(block, "max_retries", path, int, 6)
        if retries < 0:
            raise reader.fail(f"{path}.max_retries", f"must be 0 or more, got {retries!r}")
        return EmbedderSpec(
            name=name, kind=kind, url=url.rstrip("/"), model=model, api_key_env=key_env,
            batch_size=_positive_int(reader, block, "batch_size", path, 64, MAX_OPENAI_BATCH) or 64,
            dimensions=_positive_int(reader, block, "dimensions", path, None),
            requests_per_minute=_positive_number(reader, block, "requests_per_minute", path, None),
            tokens_per_minute=_positive_number(reader, block, "tokens_per_minute", path, None),
            timeout=_positive_number(reader, block, "timeout", path, 30.0) or 30.0,
            max_retries=retries, revision=revision,
        )
    function = reader.get(block, "function", path, str)
    version = reader.get(block, "version", path, str)
    if not function or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", function):
        raise reader.fail(f"{path}.function" if function else path,
                          "a callable embedder needs function = \"package.module:function\"")
    if not version:
        raise reader.fail(path, "missing key 'version'",
                          "a callable's code cannot be hashed: set version = \"1\" and change it whenever the "
                          "function starts returning different vectors (it is part of the cache key)")
    return EmbedderSpec(name=name, kind=kind, function=function, version=version,
                        batch_size=_positive_int(reader, block, "batch_size", path, 64) or 64)


def parse_cache(reader: Any, value: Any) -> CacheSpec:
    data = reader.table(value, "embedding_cache", _CACHE_KEYS)
    collection = reader.get(data, "collection", "embedding_cache", str, DEFAULT_CACHE_COLLECTION)
    if not re.fullmatch(r"[A-Z][_0-9A-Za-z]*", collection):
        raise reader.fail("embedding_cache.collection", f"invalid collection name {collection!r}",
                          "ASCII, starting with an upper-case letter")
    max_entries = _positive_int(reader, data, "max_entries", "embedding_cache", DEFAULT_CACHE_MAX_ENTRIES)
    max_age = _positive_number(reader, data, "max_age_days", "embedding_cache", None)
    return CacheSpec(collection=collection, max_entries=max_entries or DEFAULT_CACHE_MAX_ENTRIES, max_age_days=max_age)


class PlainReader:
    """The reader interface ``parse_embedders`` needs, without the mapping module (``embed.query``)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str, fix: str = "") -> Exception:
        from .errors import EmbedderConfigError

        return EmbedderConfigError(f"{self.source}: {path}: {problem}" + (f" — {fix}" if fix else ""))

    def table(self, value: Any, path: str, allowed: dict[str, str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {type(value).__name__}")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise self.fail(f"{path}.{unknown[0]}", "unknown key", f"valid keys: {', '.join(sorted(allowed))}")
        return value

    def get(self, data: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = data.get(key, default)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if key in data and (bool not in kinds and isinstance(value, bool) or not isinstance(value, kinds)):
            raise self.fail(f"{path}.{key}", f"expected {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
        return value

    def choice(self, data: dict[str, Any], key: str, path: str, choices: tuple[str, ...]) -> str | None:
        value = self.get(data, key, path, str)
        if value is not None and value not in choices:
            raise self.fail(f"{path}.{key}", f"invalid value {value!r}", f"valid values: {', '.join(choices)}")
        return value
