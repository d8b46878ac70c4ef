"""Run every benchmark and the soak, and write docs/benchmarks.md (+ a PNG of soak lag).

Each bench prints its own Markdown tables with the baseline measured in the same run;
this script runs them one after another on this machine, records the machine, the
versions and the exact commands, and plots the outbox lag over time during the soak.

    ./bench/report                 # full: 1M-row backfill, 60 s per replay rate, 30-minute soak
    ./bench/report --quick         # minutes: smaller tables, shorter runs, 3-minute soak
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    import os

    import redis
    import rq
    import sqlalchemy
    import weaviate

    from sqlite_to_weaviate.local.weaviate_build import WEAVIATE_VERSION

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return (
        f"- machine: {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, {platform.platform()}\n"
        f"- Python {platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}, "
        f"Weaviate server {WEAVIATE_VERSION} (built from its Go module), Redis {redis_version.removeprefix('v=')}\n"
        f"- weaviate-client {weaviate.__version__}, rq {rq.__version__}, redis-py {redis.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}\n"
    )


def run(title: str, argv: list[str], timeout: float) -> str:
    command = " ".join(argv)
    print(f"==> {title}: {command}", flush=True)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    tables = "\n".join(line for line in proc.stdout.splitlines() if line.startswith("|") or not line.strip()
                       or not line.startswith(("==>", "[", "20")))
    status = "" if proc.returncode == 0 else f"\n\n**exit code {proc.returncode}**: {proc.stderr[-1500:]}\n"
    return f"## {title}\n\n`{command}` ({seconds:.0f} s)\n\n{tables.strip()}{status}\n"


def soak_section(duration: float, seed: int, existing: Path | None = None) -> str:
    """Run the soak (or read the JSON of one already run with ``python -m tests.soak --json``)."""
    if existing is not None:
        out = existing
        data = json.loads(out.read_text())
        section = (f"## Fault-injection soak ({data['duration_s'] / 60:.0f} min)\n\n"
                   f"`python -m tests.soak --duration {data['duration_s']:.0f} --seed {seed} --json FILE`\n")
    else:
        out = Path(tempfile.mkdtemp()) / "soak.json"
        section = run(f"Fault-injection soak ({duration / 60:.0f} min)",
                      ["-m", "tests.soak", "--duration", str(duration), "--seed", str(seed), "--json", str(out)],
                      timeout=duration + 1800)
        if not out.exists():
            return section
        data = json.loads(out.read_text())
    chart = ROOT / "docs" / "soak-lag.png"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        xs = [t for t, _ in data["lag_timeline"]]
        ys = [lag for _, lag in data["lag_timeline"]]
        fig, ax = plt.subplots(figsize=(10, 3.5))
        ax.plot(xs, ys, linewidth=0.8, label="age of oldest unapplied change (s)")
        for at, kind, _ in data["faults"]:
            ax.axvline(at, color="red", alpha=0.25, linewidth=0.7)
        ax.set_xlabel("seconds into the soak (red lines: injected faults)")
        ax.set_ylabel("lag (s)")
        ax.set_title("Replication lag during the fault-injection soak")
        ax.legend(loc="upper right")
        fig.tight_layout()
        fig.savefig(chart, dpi=110)
        section += "\n![lag during the soak](soak-lag.png)\n"
    except ImportError:
        section += "\n(install matplotlib — `pip install -e .[bench]` — for the lag chart)\n"
    counts: dict[str, int] = {}
    for _, kind, _ in data["faults"]:
        counts[kind] = counts.get(kind, 0) + 1
    section += "\n| fault | injected |\n|---|---:|\n" + "".join(f"| {k} | {v} |\n" for k, v in sorted(counts.items()))
    section += f"\nRows compared equal at the end: {data['rows_compared']}; verifier: clean.\n"
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--soak-duration", type=float)
    parser.add_argument("--skip-soak", action="store_true")
    parser.add_argument("--soak-json", type=Path, help="use this soak result instead of running the soak")
    parser.add_argument("--only", help="comma-separated subset of: capture,replay,backfill,verify,embeddings")
    args = parser.parse_args()
    quick = args.quick
    only = set(args.only.split(",")) if args.only else {"capture", "replay", "backfill", "verify", "embeddings"}
    benches = {
        "capture": ("Capture overhead (app writes/s, capture on vs off)",
                    ["bench/capture_overhead.py", "--runs", "3" if quick else "5", "--rows", "1000" if quick else "2000"]),
        "replay": ("Live replay lag and throughput",
                   ["bench/replay_bench.py", "--rates", "100,500,1000", "--duration", "15" if quick else "60",
                    "--workers", "4", "--changes", "10000" if quick else "20000"]),
        "backfill": ("Backfill throughput and memory",
                     ["bench/backfill_bench.py", "--rows", "100000" if quick else "100000,1000000",
                      "--rounds", "1" if quick else "3,1"]),
        "verify": ("Verify throughput and memory",
                   ["bench/verify_bench.py", "--rows", "100000"] + ([] if quick else ["1000000"])),
        "embeddings": ("Embeddings: each computed once",
                       ["bench/embeddings_bench.py", "--rows", "3000", "--changes", "10000", "--workers", "2"]),
    }
    sections = [run(title, argv, 7200) for name, (title, argv) in benches.items() if name in only]
    if args.soak_json or not args.skip_soak:
        sections.append(soak_section(args.soak_duration or (180 if quick else 1800), seed=1, existing=args.soak_json))
    text = (
        f"# Benchmarks\n\nGenerated by `./bench/report {' '.join(sys.argv[1:])}` on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Every ratio compares against a baseline "
        "measured in the same run on the same servers; the machine is small and noisy, so read medians "
        "and ratios, not absolute numbers.\n\n" + machine() + "\n" + "\n".join(sections)
    )
    (ROOT / "docs" / "benchmarks.md").write_text(text)
    print(f"wrote {ROOT / 'docs' / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
