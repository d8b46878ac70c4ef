"""The sidecar image's build step works on exactly the files its build context sends.

Docker is not available in CI, so this replays the Dockerfile's ``pip install /src``
as a wheel build over a copy of what docker/Dockerfile.dockerignore lets through (a
whitelist: ``*`` then ``!`` exceptions). A file the package build needs but the
whitelist drops would break ``docker compose build`` for users; this catches it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
IGNORE_FILE = REPO / "docker" / "Dockerfile.dockerignore"


def whitelist() -> list[str]:
    """The ``!`` exceptions of the ignore file, which must start by excluding everything."""
    lines = [line.strip() for line in IGNORE_FILE.read_text(encoding="utf-8").splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", "the build context must be a whitelist"
    return [p[1:].removesuffix("/**") for p in patterns if p.startswith("!")]


def can_build_offline() -> bool:
    """Whether setuptools here can build a wheel without fetching build requirements.

    Docker's ``pip install /src`` uses build isolation (it downloads setuptools and wheel);
    here the same build runs offline when the environment already can (``wheel``
    installed, or setuptools >= 70.1 which ships ``bdist_wheel`` itself).
    """
    try:
        import wheel  # noqa: F401
        return True
    except ImportError:
        import setuptools

        major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
        return (major, minor) >= (70, 1)


def test_whitelist_covers_what_pyproject_needs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    allowed = set(whitelist())
    assert {"pyproject.toml", "sqlite_to_weaviate"} <= allowed
    readme = project.get("readme")
    if isinstance(readme, str):
        assert readme in allowed


def test_package_builds_from_the_build_context(tmp_path: Path):
    readme = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"].get("readme")
    assert not isinstance(readme, str) or (REPO / readme).is_file(), f"pyproject.toml names a missing readme {readme!r}"
    context = tmp_path / "src"
    context.mkdir()
    for name in whitelist():
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            shutil.copy2(source, context / name)
    out = tmp_path / "wheels"
    isolation = ["--no-build-isolation"] if can_build_offline() else []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(out), str(context)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("sqlite_to_weaviate-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "sqlite_to_weaviate/cli/__init__.py" in names
        data_files = [n for n in (REPO / "sqlite_to_weaviate").rglob("*")
                      if n.is_file() and n.suffix not in (".py", ".pyc") and "__pycache__" not in n.parts]
        missing = sorted(str(f.relative_to(REPO)) for f in data_files if str(f.relative_to(REPO)) not in names)
        assert not missing, f"package data left out of the wheel (add [tool.setuptools.package-data]): {missing}"
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "sqlite-to-weaviate = sqlite_to_weaviate.cli:main" in archive.read(entry_points).decode()
