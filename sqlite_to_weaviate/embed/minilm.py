"""A BERT sentence encoder (all-MiniLM-L6-v2 and its kind) as a pure numpy forward pass.

Why not sentence-transformers: on PyPI it pulls the CUDA build of torch (5.8 GB, four
minutes to install on every clean CI machine, 7-50 s to import); onnxruntime would need
an ONNX graph we would have to build from the weights ourselves, as much code as this
file. This encoder needs numpy and ``tokenizers`` (about 110 MB, 7 s to install) and
agrees with sentence-transformers to 2e-7 per component (tests/unit/test_embed_minilm.py
checks 21 reference vectors made with sentence-transformers 6.2.0), so the weights' hash
is an honest model version whatever runs them.

The model: token + position + type embeddings, LayerNorm, N encoder layers (12-head
self-attention, exact-erf GELU feed-forward, post-LayerNorm), then the pooling in
``1_Pooling/config.json`` (mean over real tokens for MiniLM) and L2 normalisation when
``modules.json`` lists a Normalize module. Safetensors is parsed by hand (8-byte header
length, JSON header, raw little-endian tensors); the ``safetensors`` package is not needed.

Speed notes (measured, docs/embeddings.md): the linears run as one 2-D GEMM over all
tokens of a batch; the feed-forward block runs in chunks of 128 rows so its temporaries
stay in cache; texts are sorted by length before batching so padding is short. Workers
should run numpy's BLAS with one thread and scale with processes
(``sqlite-to-weaviate worker`` sets ``OPENBLAS_NUM_THREADS=1`` unless you set it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EmbedderConfigError

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}
FFN_ROWS = 128


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as float32 (int tensors as int64)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    length = int.from_bytes(bytes(raw[:8]), "little")
    header = json.loads(bytes(raw[8:8 + length]))
    header.pop("__metadata__", None)
    base = 8 + length
    tensors = {}
    for name, meta in header.items():
        dtype = _DTYPES.get(meta["dtype"])
        if dtype is None:
            raise EmbedderConfigError(f"{path}: tensor {name} has dtype {meta['dtype']}, only F32/F16 are supported")
        start, end = meta["data_offsets"]
        array = np.frombuffer(raw[base + start:base + end], dtype=np.dtype(dtype).newbyteorder("<"))
        tensors[name] = np.array(array.reshape(meta["shape"]),
                                 dtype=np.int64 if dtype is np.int64 else np.float32)
    return tensors


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    var = np.square(centered).mean(-1, keepdims=True)
    centered /= np.sqrt(var + np.float32(eps))
    centered *= gain
    centered += bias
    return centered


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, BERT's "gelu". numpy has no erf: Abramowitz & Stegun 7.1.26
    (|error| <= 1.5e-7). With erf(x/√2) = sign(x)(1 - P), P = t·poly(t)·exp(-x²/2),
    gelu(x) = max(x, 0) - ½|x|P: one branch-free formula, computed in place."""
    a = np.abs(x)
    t = a * np.float32(0.3275911 / math.sqrt(2.0))
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    p = np.float32(1.061405429) * t
    p -= np.float32(1.453152027)
    p *= t
    p += np.float32(1.421413741)
    p *= t
    p -= np.float32(0.284496736)
    p *= t
    p += np.float32(0.254829592)
    p *= t
    e = np.square(x)
    e *= np.float32(-0.5)
    np.exp(e, out=e)
    p *= e
    p *= a
    p *= np.float32(0.5)
    np.maximum(x, np.float32(0.0), out=a)
    a -= p
    return a


@dataclass
class Encoded:
    """Vectors (float32, one row per text) and what was spent on them."""

    vectors: np.ndarray
    tokens: int
    truncated: int


class SentenceEncoder:
    """A BERT encoder with sentence-transformers pooling, loaded from a model directory."""

    def __init__(self, model_dir: Path, *, max_tokens: int = 256) -> None:
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        try:
            config = json.loads((model_dir / "config.json").read_text())
            pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
            modules = json.loads((model_dir / "modules.json").read_text())
        except (OSError, ValueError) as exc:
            raise EmbedderConfigError(f"model directory {model_dir} is not a sentence-transformers model: {exc}") from None
        if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
            raise EmbedderConfigError(f"{model_dir}: only BERT models with GELU are supported "
                                      f"(model_type {config.get('model_type')!r})")
        if pooling.get("pooling_mode_mean_tokens"):
            self.pooling = "mean"
        elif pooling.get("pooling_mode_cls_token"):
            self.pooling = "cls"
        else:
            raise EmbedderConfigError(f"{model_dir}: pooling {pooling} is not supported (mean or cls)")
        self.normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dims = int(config["hidden_size"])
        limit = int(config.get("max_position_embeddings", 512))
        try:
            limit = min(limit, int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]))
        except (OSError, ValueError, KeyError):
            pass
        self.max_tokens = min(max_tokens, limit)
        weights = load_safetensors(model_dir / "model.safetensors")
        self.w = {k.removeprefix("bert."): v for k, v in weights.items()}
        for name in list(self.w):  # Linear weights (out, in) -> (in, out), once
            if name.endswith(".weight") and self.w[name].ndim == 2 and "embeddings" not in name:
                self.w[name] = np.ascontiguousarray(self.w[name].T)
        # tokenizer.json of MiniLM ships truncation 128 and fixed padding to 128;
        # sentence-transformers truncates at max_seq_length and pads per batch.
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)

    def encode(self, texts: list[str], *, batch_size: int = 32) -> Encoded:
        """Unit vectors (when the model normalises) for ``texts``, in order."""
        if not texts:
            return Encoded(np.zeros((0, self.dims), dtype=np.float32), 0, 0)
        encodings = self.tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encodings]
        truncated = sum(1 for e in encodings if e.overflowing)
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(lengths[i] for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            types = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                e = encodings[i]
                ids[row, :lengths[i]] = e.ids
                types[row, :lengths[i]] = e.type_ids
                mask[row, :lengths[i]] = 1.0
            out[chunk] = self.forward(ids, mask, types)
        return Encoded(out, sum(lengths), truncated)

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        w, eps = self.w, self.eps
        batch, width = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][np.arange(width)][None]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        heads = self.heads
        head_dim = x.shape[-1] // heads
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(head_dim))
        x = x.reshape(batch * width, -1)  # one 2-D GEMM per linear (3-D @ 2-D is several times slower)
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            q = x @ w[p + "attention.self.query.weight"] + w[p + "attention.self.query.bias"]
            k = x @ w[p + "attention.self.key.weight"] + w[p + "attention.self.key.bias"]
            v = x @ w[p + "attention.self.value.weight"] + w[p + "attention.self.value.bias"]
            q = q.reshape(batch, width, heads, head_dim).transpose(0, 2, 1, 3)
            k = k.reshape(batch, width, heads, head_dim).transpose(0, 2, 3, 1)
            v = v.reshape(batch, width, heads, head_dim).transpose(0, 2, 1, 3)
            scores = (q @ k) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * width, heads * head_dim)
            attended = context @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            attended += x
            x = _layer_norm(attended, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], eps)
            w1, b1 = w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]
            w2, b2 = w[p + "output.dense.weight"], w[p + "output.dense.bias"]
            out = np.empty_like(x)
            for row in range(0, x.shape[0], FFN_ROWS):
                hidden = gelu(x[row:row + FFN_ROWS] @ w1 + b1)
                np.add(hidden @ w2, b2, out=out[row:row + FFN_ROWS])
            out += x
            x = _layer_norm(out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        x = x.reshape(batch, width, -1)
        if self.pooling == "cls":
            pooled = x[:, 0]
        else:
            m = mask[:, :, None]
            pooled = (x * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        if self.normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32, copy=False)


def load_encoder(model_dir: Path, **kwargs: Any) -> SentenceEncoder:
    return SentenceEncoder(model_dir, **kwargs)
