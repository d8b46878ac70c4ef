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
    parser.add_argument("--conversations", type=int, default=1800,
                        help="size of the seeded chat database (1800 is about 15,000 rows to backfill)")
    parser.add_argument("--backfill-rate", type=int, default=400, help="backfill rows per second")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS),
                        help="comma-separated fault kinds to inject (default: all)")
    parser.add_argument("--root", type=Path, help="keep the soak's files here (default: a new temp dir)")
    parser.add_argument("--json", type=Path, help="write faults, lag timeline and verify summary here")
    args = parser.parse_args()
    configure_logging("WARNING")
    kinds = tuple(k.strip() for k in args.faults.split(",") if k.strip())
    unknown = set(kinds) - set(FAULT_KINDS)
    if unknown:
        raise SystemExit(f"unknown fault kind(s) {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
    root = args.root or Path(tempfile.mkdtemp(prefix="s2w-soak-"))
    print(f"soak files in {root}", flush=True)
    result = Soak(root, duration=args.duration, seed=args.seed, rate=args.rate, fault_every=args.fault_every,
                  conversations=args.conversations, workers=args.workers, kinds=kinds,
                  backfill_rate=args.backfill_rate).run()
    fired = result.kinds()
    print(f"\nsoak {args.duration:.0f}s seed {args.seed}: {len(result.faults)} faults, {result.rows_compared} rows "
          f"equal in both stores, verify clean; the self-check repaired {result.self_check.get('repaired', 0)} "
          f"object(s) Weaviate stored without indexing ({result.self_check.get('unindexed', 0)} found)")
    for kind in kinds:
        print(f"  {kind:<18} {sum(1 for _, k, _ in result.faults if k == kind)}")
    missing = set(kinds) - fired
    if args.json:
        args.json.write_text(json.dumps(result.__dict__, indent=2, default=str))
    if missing:
        raise SystemExit(f"fault kinds that never fired: {sorted(missing)}")


if __name__ == "__main__":
    main()
