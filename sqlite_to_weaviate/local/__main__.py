"""``python -m sqlite_to_weaviate.local build-weaviate | cluster``: set-up helpers usable before the CLI.

``cluster [--nodes N] [--dir DIR]`` runs an N-node Weaviate cluster (default 3) of the
pinned binary on 127.0.0.1 in the foreground, prints each node's URL, and stops every
node (by pid) on Ctrl-C or SIGTERM. The data stays in DIR (a temporary dir by default,
deleted at the end), so the same DIR starts the same cluster again.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.local.redis_server import ensure_redis_binary
from sqlite_to_weaviate.local.weaviate_build import ensure_weaviate_binary

USAGE = "usage: python -m sqlite_to_weaviate.local build-weaviate | cluster [--nodes N] [--dir DIR]"


def _cluster(argv: list[str]) -> int:
    from sqlite_to_weaviate.local.weaviate_cluster import DEFAULT_NODES, WeaviateCluster

    parser = argparse.ArgumentParser(prog="python -m sqlite_to_weaviate.local cluster")
    parser.add_argument("--nodes", type=int, default=DEFAULT_NODES, help="number of nodes (default 3)")
    parser.add_argument("--dir", type=Path, help="data dir (kept); default: a temporary dir, deleted on exit")
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="s2w-cluster-"))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    cluster = WeaviateCluster(root, size=args.nodes)
    try:
        cluster.start()
        for node in cluster.nodes:
            print(f"{node.node_name}  {node.url}  pid {node.pid}  data {node.data_dir}", flush=True)
        print(f"{args.nodes} node(s) ready; Ctrl-C stops them", flush=True)
        stop.wait()
    finally:
        cluster.stop()
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["build-weaviate"]:
            print(f"weaviate-server: {ensure_weaviate_binary()}")
            print(f"redis-server:    {ensure_redis_binary()}")
            return 0
        if argv[:1] == ["cluster"]:
            return _cluster(argv[1:])
    except S2WError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
