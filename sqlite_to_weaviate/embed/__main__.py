"""``python -m sqlite_to_weaviate.embed fetch-model [NAME]``: the set-up step that fetches model files.

Run by ``scripts/setup``; never at run time (workers only read the files it wrote).
"""

from __future__ import annotations

import sys

from .errors import EmbedderError
from .model_files import BUNDLED_MODELS, MINILM, fetch_bundled_model


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "fetch-model" or len(argv) > 2 or (len(argv) == 2 and argv[1] not in BUNDLED_MODELS):
        print(f"usage: python -m sqlite_to_weaviate.embed fetch-model [{'|'.join(BUNDLED_MODELS)}]", file=sys.stderr)
        return 2
    try:
        fetch_bundled_model(argv[1] if len(argv) == 2 else MINILM.name)
    except EmbedderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
