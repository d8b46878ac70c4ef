"""The OpenAI-compatible client against a local stub: pairing, batching, refusals, retries, secrets."""

from __future__ import annotations

import base64
import struct

import pytest

from sqlite_to_weaviate.embed.config import EmbedderSpec
from sqlite_to_weaviate.embed.batches import isolate_refusals
from sqlite_to_weaviate.embed.errors import EmbedderConfigError, EmbedderTransient, InputRefused
from sqlite_to_weaviate.embed.openai_api import OpenAIEmbedder, classify, parse_response, retry_after_seconds
from sqlite_to_weaviate.embed.rate_limit import LocalRateLimiter
from sqlite_to_weaviate.embed.text import as_float32
from tests.support.openai_stub import API_KEY, TOO_LONG_MARK, StubServer, stub_vector


def spec(url: str, **extra) -> EmbedderSpec:
    values = dict(name="oa", kind="openai", url=url, model="text-embedding-test", api_key_env="S2W_TEST_OPENAI_KEY",
                  batch_size=4, max_retries=3, timeout=5.0)
    values.update(extra)
    return EmbedderSpec(**values)


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setenv("S2W_TEST_OPENAI_KEY", API_KEY)
    with StubServer(dims=8, max_words=20) as server:
        yield server


def test_vectors_are_paired_by_index_in_batches(stub):
    embedder = OpenAIEmbedder(spec(stub.url))
    texts = [f"text number {i}" for i in range(10)]
    out = embedder.embed(texts)
    assert out.vectors == [as_float32(stub_vector("text-embedding-test", t, 8)) for t in texts]
    assert out.requests == 3 and [len(c["inputs"]) for c in stub.calls] == [4, 4, 2]
    assert out.tokens == 30 and out.refused == {}
    assert embedder.id == "openai:text-embedding-test"


def test_a_refused_input_is_isolated_and_the_rest_embedded(stub):
    embedder = OpenAIEmbedder(spec(stub.url, batch_size=8))
    texts = [f"fine {i}" for i in range(8)]
    texts[5] = f"far too long {TOO_LONG_MARK}"
    out = embedder.embed(texts)
    assert set(out.refused) == {5} and "maximum context length" in out.refused[5]
    assert out.vectors[5] is None and all(v is not None for i, v in enumerate(out.vectors) if i != 5)
    assert out.requests <= 1 + 2 * 3  # one batch, then halves down to the single refused input


def test_transient_failures_are_retried_honouring_retry_after(stub):
    embedder = OpenAIEmbedder(spec(stub.url))
    waits = []
    stub.faults = ["429", "503"]
    out = embedder.embed(["a", "b"], wait=waits.append)
    assert out.vectors[0] is not None and waits[0] == 1.0 and len(waits) == 2  # Retry-After: 1, then backoff
    stub.faults = ["500"] * 10
    with pytest.raises(EmbedderTransient, match="HTTP 500"):
        embedder.embed(["c"], wait=waits.append)


def test_configuration_failures_are_not_the_rows_fault(stub, monkeypatch):
    stub.faults = ["429-quota"]
    with pytest.raises(EmbedderConfigError, match="quota"):
        OpenAIEmbedder(spec(stub.url)).embed(["a"], wait=lambda s: None)
    monkeypatch.setenv("S2W_TEST_OPENAI_KEY", "sk-wrong")
    with pytest.raises(EmbedderConfigError, match="401"):
        OpenAIEmbedder(spec(stub.url)).embed(["a"], wait=lambda s: None)
    monkeypatch.delenv("S2W_TEST_OPENAI_KEY")
    with pytest.raises(EmbedderConfigError, match="S2W_TEST_OPENAI_KEY"):
        OpenAIEmbedder(spec(stub.url))
    with pytest.raises(EmbedderConfigError, match="404"):
        OpenAIEmbedder(spec(stub.url.removesuffix("/v1") + "/nope", api_key_env=None)).embed(["a"])


def test_the_key_never_shows(stub):
    embedder = OpenAIEmbedder(spec(stub.url))
    assert API_KEY not in repr(embedder) and API_KEY not in repr(embedder.spec) and API_KEY not in str(vars(embedder))


def test_classification_by_status_first():
    assert isinstance(classify(400, {"error": {"message": "This model's maximum context length is 8192 tokens",
                                               "code": None}}, {}), InputRefused)
    llama = classify(500, {"error": {"code": 500, "message": "input (700 tokens) is too large to process"}}, {})
    assert isinstance(llama, InputRefused)
    vllm = classify(503, {"object": "error", "message": "busy", "code": 503}, {"Retry-After": "2"})
    assert isinstance(vllm, EmbedderTransient) and vllm.retry_after == 2.0
    assert isinstance(classify(429, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}, {}),
                      EmbedderTransient)
    assert isinstance(classify(403, {"error": {"message": "no"}}, {}), EmbedderConfigError)
    assert isinstance(classify(422, "unprocessable", {}), InputRefused)


def test_retry_after_headers():
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert retry_after_seconds({"retry-after": "soon"}) is None and retry_after_seconds({}) is None


def test_parse_response_checks_everything():
    packed = base64.b64encode(struct.pack("<2f", 0.5, -0.25)).decode()
    vectors, tokens = parse_response({"data": [{"index": 1, "embedding": [1.0, 0.0]},
                                               {"index": 0, "embedding": packed}]}, 2)
    assert vectors == [[0.5, -0.25], [1.0, 0.0]] and tokens is None
    for bad in ({"data": [{"index": 0, "embedding": [1.0]}]}, {"data": [{"index": 0, "embedding": [1.0]},
                                                                        {"index": 0, "embedding": [1.0]}]},
                {"nope": 1}, {"data": [{"index": 0, "embedding": "!!"}, {"index": 1, "embedding": [1.0]}]}):
        with pytest.raises(EmbedderTransient, match="malformed"):
            parse_response(bad, 2)


def test_isolate_refusals_finds_each_refused_input():
    def call(chunk):
        if any("bad" in t for t in chunk):
            raise InputRefused("too long")
        return [[float(len(t))] for t in chunk]

    out = isolate_refusals(call, ["a", "bad1", "ccc", "dd", "bad2", "e"])
    assert set(out.refused) == {1, 4}
    assert out.vectors == [[1.0], None, [3.0], [2.0], None, [1.0]]


def test_local_rate_limiter_meters_cost():
    limiter = LocalRateLimiter(per_minute=60)  # one per second, one second of burst
    assert limiter.reserve(1) == 0.0
    waits = [limiter.reserve(1) for _ in range(3)]
    assert waits[0] == pytest.approx(1.0, abs=0.05) and waits[2] == pytest.approx(3.0, abs=0.05)
