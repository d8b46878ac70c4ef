"""``python -m sqlite_to_weaviate.local build-weaviate|up``: set-up helpers usable before the CLI."""

from __future__ import annotations

import sys

from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.local.redis_server import ensure_redis_binary
from sqlite_to_weaviate.local.weaviate_build import ensure_weaviate_binary


def main(argv: list[str]) -> int:
    if argv[:1] != ["build-weaviate"]:
        print("usage: python -m sqlite_to_weaviate.local build-weaviate", file=sys.stderr)
        return 2
    try:
        print(f"weaviate-server: {ensure_weaviate_binary()}")
        print(f"redis-server:    {ensure_redis_binary()}")
    except S2WError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
