"""A stand-in for an OpenAI-compatible ``POST /v1/embeddings`` server, on 127.0.0.1 (stdlib only).

No paid API is reachable from CI, so the client is tested against this stub, which
answers in the shapes documented by OpenAI (and copied by vLLM and llama.cpp):

* Bearer key required (401 ``invalid_api_key`` otherwise); unknown paths are 404;
* an input containing ``TOO_LONG_MARK`` or longer than ``max_words`` words refuses the
  whole request with OpenAI's context-length 400 (``code`` null);
* ``faults``: statuses to answer for the next requests (429 with ``Retry-After: 1``,
  ``429-quota`` for insufficient_quota, 500/503, ``500-llama`` for llama.cpp's "too large");
* deterministic unit vectors (sha256 of model and text), ``data`` in reverse order (a
  client must pair by ``index``), ``usage.prompt_tokens`` = words; ``calls`` records every
  request (model, inputs) that got vectors.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-test-not-a-real-key"
TOO_LONG_MARK = "__TOO_LONG__"


def stub_vector(model: str, text: str, dims: int) -> list[float]:
    raw = b""
    counter = 0
    while len(raw) < dims:
        raw += hashlib.sha256(f"{model}\0{counter}\0{text}".encode()).digest()
        counter += 1
    values = [(b - 127.5) / 127.5 for b in raw[:dims]]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, dims: int = 8, max_words: int = 50) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.dims = dims
        self.max_words = max_words
        self.faults: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.requests = 0
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> "StubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def _error(status: int, message: str, etype: str, code: Any, param: str | None = None) -> tuple[int, dict]:
    return status, {"error": {"message": message, "type": etype, "param": param, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    server: StubServer

    def log_message(self, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        stub = self.server
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        with stub.lock:
            stub.requests += 1
            fault = stub.faults.pop(0) if stub.faults else None
        if self.path.rstrip("/") != "/v1/embeddings":
            return self._send(*_error(404, f"Unknown request URL: POST {self.path}.", "invalid_request_error",
                                      "unknown_url"))
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._send(*_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        if fault == "429":
            return self._send(*_error(429, "Rate limit reached for requests. Please try again in 1s.", "requests",
                                      "rate_limit_exceeded"), headers={"Retry-After": "1"})
        if fault == "429-quota":
            return self._send(*_error(429, "You exceeded your current quota, please check your plan and billing "
                                      "details.", "insufficient_quota", "insufficient_quota"))
        if fault in ("500", "503"):
            return self._send(*_error(int(fault), "The server had an error while processing your request.",
                                      "server_error", None))
        if fault == "500-llama":
            return self._send(500, {"error": {"code": 500, "message": "input (700 tokens) is too large to process. "
                                              "increase the physical batch size (current batch size: 512)",
                                              "type": "server_error"}})
        try:
            request = json.loads(raw)
        except ValueError:
            return self._send(*_error(400, "We could not parse the JSON body of your request.",
                                      "invalid_request_error", None))
        model, inputs = request.get("model"), request.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(model, str) or not model:
            return self._send(*_error(400, "you must provide a model parameter", "invalid_request_error", None, "model"))
        if not isinstance(texts, list) or not texts or len(texts) > 2048 or \
                not all(isinstance(t, str) and t for t in texts):
            return self._send(*_error(400, "'$.input' is invalid.", "invalid_request_error", None, "input"))
        words = [len(t.split()) for t in texts]
        for text, n in zip(texts, words):
            if TOO_LONG_MARK in text or n > stub.max_words:
                asked = max(n, stub.max_words + 1)
                return self._send(*_error(
                    400, f"This model's maximum context length is {stub.max_words} tokens, however you requested "
                         f"{asked} tokens ({asked} in your prompt; 0 for the completion). Please reduce your prompt; "
                         "or completion length.", "invalid_request_error", None))
        dims = request.get("dimensions") or stub.dims
        fmt = request.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            return self._send(*_error(400, f"'{fmt}' is not one of ['float', 'base64'] - 'encoding_format'",
                                      "invalid_request_error", None, "encoding_format"))
        with stub.lock:
            stub.calls.append({"model": model, "inputs": list(texts)})
        data = []
        for index, text in enumerate(texts):
            vector = stub_vector(model, text, dims)
            embedding: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if fmt == "base64" else vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        data.reverse()
        total = sum(words)
        self._send(200, {"object": "list", "data": data, "model": model,
                         "usage": {"prompt_tokens": total, "total_tokens": total}})
