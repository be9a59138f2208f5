"""CPU per rolling canary: ``make bench-canaries``.

    python -m bench.scale.canaries                      # 50 Models; 0, 10 and 50 canaries
    python -m bench.scale.canaries --canaries 10 50 --analysis-interval 10

One scale run (bench.scale) per count of canaries, the same fleet otherwise, every
canary analysed every ``--analysis-interval`` seconds. From each run's steady window:
the operator's CPU per canary per minute, whole (all the operator spends, divided by
the canaries: how Flagger's figure is read, whose process does nothing else) and
marginal (above the run without canaries: what a canary adds). Figures in
.tmp/bench/canaries-N.json.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import __main__ as scale

REPO = Path(__file__).parents[2]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale.canaries", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--models", type=int, default=50, help="Models (default 50)")
    parser.add_argument(
        "--canaries", type=int, nargs="+", default=[10, 50], help="counts (default 10 50)"
    )
    parser.add_argument(
        "--analysis-interval", type=float, default=10.0, help="seconds (default 10)"
    )
    parser.add_argument("--short", action="store_true", help="short windows: a check")
    return parser.parse_args(argv)


def per_canary(runs: dict[int, dict[str, Any]]) -> list[dict[str, float]]:
    """Each count's CPU-seconds per canary per minute, whole and above the count 0."""
    idle = runs[0]["steady"]["cpu_share"]
    rows = []
    for count, report in sorted(runs.items()):
        if count == 0:
            continue
        share = report["steady"]["cpu_share"]
        rows.append(
            {
                "canaries": count,
                "rolling": report["canaries_rolling"],
                "cpu_share": share,
                "cpu_seconds_per_canary_per_minute": round(60 * share / count, 4),
                "marginal_cpu_seconds_per_canary_per_minute": round(60 * (share - idle) / count, 4),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = REPO / ".tmp" / "bench"
    runs: dict[int, dict[str, Any]] = {}
    for count in sorted({0, *args.canaries}):
        path = out / f"canaries-{args.models}-{count}.json"
        scale_argv = [
            f"--models={args.models}",
            f"--canaries={count}",
            f"--analysis-interval={args.analysis_interval:g}",
            f"--out={path}",
            *(["--short"] if args.short else []),
        ]
        scale.main(scale_argv)
        runs[count] = json.loads(path.read_text())
    rows = per_canary(runs)
    report = {
        "models": args.models,
        "analysis_seconds": args.analysis_interval,
        "idle_cpu_share": runs[0]["steady"]["cpu_share"],
        "commit": runs[0]["commit"],
        "per_canary": rows,
    }
    (out / f"canaries-{args.models}.json").write_text(json.dumps(report, indent=2) + "\n")
    for row in rows:
        print(
            f"{row['canaries']} canaries ({row['rolling']} rolling), analysis every "
            f"{args.analysis_interval:g} s: {row['cpu_seconds_per_canary_per_minute']:g} "
            f"CPU-s per canary per minute ({row['marginal_cpu_seconds_per_canary_per_minute']:g}"
            " above none rolling)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
