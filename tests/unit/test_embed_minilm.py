"""The numpy MiniLM agrees with sentence-transformers (reference vectors made with 6.2.0 / torch)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sqlite_to_weaviate.embed.config import EmbedderSpec
from sqlite_to_weaviate.embed.embedders import build_embedder
from sqlite_to_weaviate.embed.minilm import gelu
from sqlite_to_weaviate.embed.model_files import MINILM, bundled_model_dir

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference_vectors.json"


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(EmbedderSpec(name="m", kind="local", model=MINILM.name, batch_size=8))


def test_matches_sentence_transformers(embedder):
    data = json.loads(REFERENCE.read_text())
    assert data["model_sha256"] == MINILM.files["model.safetensors"][1]
    out = embedder.embed(data["texts"])
    got = np.array(out.vectors, dtype=np.float64)
    want = np.array(data["vectors"], dtype=np.float64)
    cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosine.min() > 0.99999 and np.abs(got - want).max() < 1e-5
    assert out.truncated == 1  # the 400-word text is cut at 256 tokens, like sentence-transformers does
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert embedder.id == "all-MiniLM-L6-v2@53aa5117" and embedder.dims == 384


def test_order_and_batching_do_not_change_vectors(embedder):
    texts = ["short", "a much longer text that needs more tokens than the first one", "ok"]
    one_by_one = [embedder.embed([t]).vectors[0] for t in texts]
    assert np.allclose(embedder.embed(texts).vectors, one_by_one, atol=1e-6)
    assert np.allclose(embedder.embed(texts[::-1]).vectors[::-1], one_by_one, atol=1e-6)


def test_gelu_is_the_exact_erf_form():
    xs = np.linspace(-6, 6, 2001, dtype=np.float32)
    exact = np.array([0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs.astype(np.float64)])
    assert np.abs(gelu(xs.copy()) - exact).max() < 5e-7


def test_model_files_are_the_pinned_ones():
    directory = bundled_model_dir(MINILM.name)
    manifest = json.loads((directory / "s2w-manifest.json").read_text())
    assert manifest["wheel_sha256"] == MINILM.wheel_sha256
    assert manifest["files"]["model.safetensors"] == MINILM.files["model.safetensors"][1]
