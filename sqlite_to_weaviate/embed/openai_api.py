"""An OpenAI-compatible ``POST /v1/embeddings`` client that sorts every failure correctly.

Works with OpenAI and the servers that copy its API (vLLM, llama.cpp, Ollama, LiteLLM,
TEI, ...). Facts it is built on (docs/embeddings.md has the sources):

* Request: ``{"model", "input": [...], "encoding_format": "float"}`` (+ ``dimensions``
  only when configured: not every server accepts it). The key, when there is one, is a
  Bearer token read from the environment variable the mapping names, held in a Secret.
* Response: ``data[*].index`` pairs vectors with inputs (servers may reorder them);
  ``usage.prompt_tokens`` is optional. Everything is checked: count, indexes, equal
  finite dimensions (and the configured ``dimensions``); a malformed answer is transient.
* Failures, classified by status first (OpenAI's ``code`` is null for the context-length
  error; vLLM's ``code`` is an int; llama.cpp says "too large to process" with a 500):

  ====================================================  ============================
  timeout, connection error, 408, 409, 429, 5xx          transient: retried with backoff,
                                                         honouring ``retry-after-ms`` /
                                                         ``Retry-After`` (≤ 120 s)
  401, 403, 404, 429 ``insufficient_quota``              configuration: the job is handed
                                                         back, rows are never dead-lettered
  400, 413, 422, or a message about the input's size     the input is refused: the batch is
                                                         split until each refused input is
                                                         alone; it becomes a dead letter
  ====================================================  ============================
"""

from __future__ import annotations

import base64
import random
import re
import struct
import time
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

from .config import EmbedderSpec
from .batches import Embedded, Sleep, checked_vectors, estimated_tokens, isolate_refusals
from .errors import EmbedderConfigError, EmbedderTransient, InputRefused

MAX_RETRY_AFTER_S = 120.0
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 8.0
_TOO_LONG = re.compile(
    r"maximum context length|too large to process|exceeds the available context size|context_length_exceeded|"
    r"too many tokens|input is too long|input length|reduce the length|maximum input length|token limit", re.I)


def _message(body: Any) -> tuple[str, Any]:
    """(message, code) from the OpenAI shape, the flat vLLM shape, or anything else."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:500], error.get("code")
        if isinstance(error, str):
            return error[:500], body.get("code")
    return str(body)[:500], None


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None if absent or invalid."""
    headers = {str(k).lower(): v for k, v in headers.items()}
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - (time.time() if now is None else now))
        except (TypeError, ValueError, IndexError):
            return None


def classify(status: int, body: Any, headers: Any) -> Exception:
    """The exception a failed answer stands for (see the module docstring's table)."""
    message, code = _message(body)
    text = f"HTTP {status}: {message}"
    if status == 429 and (code == "insufficient_quota" or "quota" in message.lower()):
        return EmbedderConfigError(f"{text} (out of quota: add credit or raise the limit; rows are kept)")
    if status in (401, 403):
        return EmbedderConfigError(f"{text} (check the API key variable and its permissions)")
    if status == 404:
        return EmbedderConfigError(f"{text} (check url and model)")
    if status in (400, 413, 422) or _TOO_LONG.search(message) or code == "context_length_exceeded":
        return InputRefused(text)
    if status in (408, 409, 429) or status >= 500:
        return EmbedderTransient(text, retry_after_seconds(headers))
    return EmbedderConfigError(text)


def decode_embedding(value: Any) -> list[float]:
    """A float list, or a base64 string of little-endian float32 (``encoding_format=base64``)."""
    if isinstance(value, str):
        raw = base64.b64decode(value, validate=True)
        if len(raw) % 4:
            raise ValueError("base64 embedding is not a whole number of float32 values")
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if isinstance(value, list):
        return value
    raise ValueError(f"embedding is a {type(value).__name__}")


def parse_response(body: Any, count: int) -> tuple[list[list[float]], int | None]:
    """Vectors in input order and the prompt tokens, from a 200 body; EmbedderTransient if malformed."""
    try:
        data = body["data"]
        if not isinstance(data, list) or len(data) != count:
            raise ValueError(f"{len(data) if isinstance(data, list) else 'no'} items for {count} inputs")
        vectors: list[list[float] | None] = [None] * count
        for item in data:
            index = item["index"]
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count or vectors[index]:
                raise ValueError(f"bad or repeated index {index!r}")
            vectors[index] = decode_embedding(item["embedding"])
        usage = body.get("usage") if isinstance(body, dict) else None
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else None
    except (KeyError, TypeError, ValueError) as exc:
        raise EmbedderTransient(f"malformed embeddings response: {type(exc).__name__}: {exc}") from None
    return vectors, tokens  # type: ignore[return-value]


class OpenAIEmbedder:
    """Batches, rate limits, retries, and isolates refused inputs."""

    def __init__(self, spec: EmbedderSpec, *, limiter_factory: Callable[[str, float], Any] | None = None,
                 transport: Any = None) -> None:
        import httpx

        from .rate_limit import LocalRateLimiter

        self.spec = spec
        self.id = spec.embedder_id()
        self.dims = spec.dimensions
        headers = {"Content-Type": "application/json", "User-Agent": "sqlite-to-weaviate"}
        key = spec.api_key()  # EmbedderConfigError when the variable is missing
        if key is not None:
            headers["Authorization"] = f"Bearer {key.reveal()}"
        self._client = httpx.Client(base_url=spec.url or "", headers=headers, timeout=spec.timeout,
                                    transport=transport)
        make = limiter_factory or (lambda _unit, per_minute: LocalRateLimiter(per_minute))
        self._requests = make("requests", spec.requests_per_minute) if spec.requests_per_minute else None
        self._tokens = make("tokens", spec.tokens_per_minute) if spec.tokens_per_minute else None
        self._spent_tokens: int | None = None
        self._sleep: Sleep = time.sleep

    def __repr__(self) -> str:  # never the headers (they hold the key)
        return f"OpenAIEmbedder(id={self.id!r}, url={self.spec.url!r})"

    def close(self) -> None:
        self._client.close()

    def embed(self, texts: Sequence[str], *, wait: Sleep | None = None) -> Embedded:
        self._sleep = wait or time.sleep
        self._spent_tokens = None
        result = Embedded([None] * len(texts))
        for start in range(0, len(texts), self.spec.batch_size):
            chunk = list(texts[start:start + self.spec.batch_size])
            part = isolate_refusals(self._post_with_retries, chunk)
            result.vectors[start:start + len(chunk)] = part.vectors
            result.refused.update({start + i: reason for i, reason in part.refused.items()})
            result.requests += part.requests
        result.tokens = self._spent_tokens
        return result

    def _post_with_retries(self, chunk: list[str]) -> list[list[float]]:
        attempt = 0
        while True:
            try:
                return self._post(chunk)
            except EmbedderTransient as exc:
                if attempt >= self.spec.max_retries or (exc.retry_after or 0) > MAX_RETRY_AFTER_S:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else \
                    min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** attempt) * (0.75 + random.random() / 2)
                self._sleep(delay)
                attempt += 1

    def _post(self, chunk: list[str]) -> list[list[float]]:
        import httpx

        if self._requests is not None:
            self._sleep(self._requests.reserve(1))
        if self._tokens is not None:
            self._sleep(self._tokens.reserve(estimated_tokens(chunk)))
        body: dict[str, Any] = {"model": self.spec.model, "input": chunk, "encoding_format": "float"}
        if self.spec.dimensions:
            body["dimensions"] = self.spec.dimensions
        try:
            response = self._client.post("/embeddings", json=body)
        except httpx.TimeoutException as exc:
            raise EmbedderTransient(f"{self.spec.url}: timed out after {self.spec.timeout}s ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise EmbedderTransient(f"{self.spec.url}: {type(exc).__name__}: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = response.text[:500]
        if response.status_code != 200:
            raise classify(response.status_code, payload, response.headers)
        vectors, tokens = parse_response(payload, len(chunk))
        checked = checked_vectors(vectors, len(chunk), self.dims, f"{self.spec.url} model {self.spec.model}")
        self.dims = self.dims or len(checked[0])
        if tokens is not None:
            self._spent_tokens = (self._spent_tokens or 0) + tokens
        return checked
