"""What a forged job would like a worker to run: importing this module or calling its
function leaves a file in ``$S2W_TEST_EVIL_DIR``, so a test can prove neither happened."""

import os
from pathlib import Path


def _mark(name: str) -> None:
    directory = os.environ.get("S2W_TEST_EVIL_DIR")
    if directory:
        Path(directory, name).write_text("ran\n")


_mark("imported")


def touch(*args, **kwargs):  # noqa: ANN002, ANN003 - any signature RQ may call it with
    _mark("called")
    return "pwned"
