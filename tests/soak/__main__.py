"""``python -m tests.soak --duration 1800 --seed 1 [--json out.json]``: the long soak."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from sqlite_to_weaviate.logs import configure_logging
from tests.soak.harness import FAULT_KINDS, Soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--fault-every", type=float, default=20.0)
    parser.add_argument("--json", type=Path, help="write faults, lag timeline and verify summary here")
    args = parser.parse_args()
    configure_logging("WARNING")
    root = Path(tempfile.mkdtemp(prefix="s2w-soak-"))
    result = Soak(root, duration=args.duration, seed=args.seed, rate=args.rate, fault_every=args.fault_every).run()
    kinds = result.kinds()
    print(f"\nsoak {args.duration:.0f}s seed {args.seed}: {len(result.faults)} faults, {result.rows_compared} rows "
          f"equal in both stores, verify clean")
    for kind in FAULT_KINDS:
        print(f"  {kind:<18} {sum(1 for _, k, _ in result.faults if k == kind)}")
    missing = set(FAULT_KINDS) - kinds
    if args.json:
        args.json.write_text(json.dumps(result.__dict__, indent=2, default=str))
    if missing:
        raise SystemExit(f"fault kinds that never fired: {sorted(missing)}")


if __name__ == "__main__":
    main()
