"""Build the real Weaviate server from its Go module and cache the binary per version.

``go install github.com/weaviate/weaviate/cmd/weaviate-server@<version>`` compiles the
official server with the machine's Go toolchain. The first build takes minutes, so the
binary is cached at a fixed path keyed by version (``$S2W_CACHE_DIR`` or
``~/.cache/sqlite-to-weaviate``) and reused; a file lock stops two processes (parallel
tests, demo) from building at once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlite_to_weaviate.errors import LocalStackError

WEAVIATE_VERSION = "v1.35.2"
"""Pinned server version: a stable release supported by weaviate-client 4.x (needs >= 1.27)."""

WEAVIATE_MODULE = "github.com/weaviate/weaviate/cmd/weaviate-server"


def cache_dir() -> Path:
    """Root of the tool's cache; ``S2W_CACHE_DIR`` overrides the default."""
    override = os.environ.get("S2W_CACHE_DIR")
    return Path(override) if override else Path.home() / ".cache" / "sqlite-to-weaviate"


def binary_path(version: str = WEAVIATE_VERSION) -> Path:
    """Where the server binary for ``version`` lives once built."""
    return cache_dir() / "weaviate" / version / "weaviate-server"


def ensure_weaviate_binary(
    version: str = WEAVIATE_VERSION, *, progress: Callable[[str], None] = print
) -> Path:
    """Return the cached server binary for ``version``, building it first if needed."""
    target = binary_path(version)
    if _is_executable(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_executable(target):  # another process built it while we waited
            return target
        _build(version, target, progress)
    return target


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _build(version: str, target: Path, progress: Callable[[str], None]) -> None:
    go = shutil.which("go")
    if go is None:
        raise LocalStackError(
            "cannot build the local Weaviate server: the Go toolchain ('go') is not on PATH. "
            "Install Go >= 1.24 (e.g. `apt-get install golang`), or run Weaviate elsewhere: "
            "`docker compose up -d` with this repository's docker-compose.yml, or pass "
            "--weaviate-url/--redis-url (S2W_WEAVIATE_URL/S2W_REDIS_URL) for existing servers."
        )
    progress(f"building Weaviate {version} from its Go module (first time only, takes a few minutes)...")
    with tempfile.TemporaryDirectory(dir=target.parent) as gobin:
        env = dict(os.environ, GOBIN=gobin)
        proc = subprocess.Popen(
            [go, "install", "-x" if os.environ.get("S2W_BUILD_VERBOSE") else "-v", f"{WEAVIATE_MODULE}@{version}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert proc.stdout is not None
        seen = 0
        tail: list[str] = []
        for line in proc.stdout:
            seen += 1
            tail = (tail + [line.rstrip()])[-30:]
            if seen % 50 == 0:
                progress(f"  ... {seen} packages compiled/downloaded (last: {line.strip()[:80]})")
        if proc.wait() != 0:
            raise LocalStackError(
                f"`go install {WEAVIATE_MODULE}@{version}` failed (exit {proc.returncode}). Last output:\n"
                + "\n".join(tail)
                + "\nAlternatives: `docker compose up -d`, or --weaviate-url to an existing server."
            )
        built = Path(gobin) / "weaviate-server"
        os.chmod(built, 0o755)
        os.replace(built, target)
    progress(f"Weaviate {version} built: {target}")
