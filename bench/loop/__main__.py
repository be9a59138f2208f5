"""``make bench-loop``: ModelLoop's continual-learning decisions replayed over drifting
streams, next to plain schedules (docs/bench-loop.md).

    python -m bench.loop                      # the full run: 4 streams x 3 seeds x lag 1, 3
    python -m bench.loop --short              # CI: 2 streams, 60 days, 1 seed, no plot
    python -m bench.loop --policy my.yaml --stream-file history.csv --json
"""

import argparse
import json
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from .baselines import BASELINES, run_baseline
from .policy import DEFAULT_POLICIES, Policy, PolicyError, load_policy
from .replay import run_policy
from .report import Result, plot, table
from .streamfile import StreamFileError, read_stream
from .streams import KINDS, Stream, generate, with_lag

DEFAULT_WINDOW = timedelta(days=14)  # the baselines' data window when no policy retrains
SHORT = {"streams": "gradual,abrupt", "seeds": "1", "lag": "1", "days": 60, "volume": 1000}
FULL = {"streams": ",".join(KINDS), "seeds": "1,2,3", "lag": "1,3", "days": 180, "volume": 1000}


def _numbers(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loop", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--streams", help=f"drift kinds, comma-separated ({', '.join(KINDS)})")
    parser.add_argument("--seeds", help="comma-separated (default 1,2,3)")
    parser.add_argument("--lag", help="label lags in days, comma-separated (default 1,3)")
    parser.add_argument("--days", type=int, help="scored days (default 180)")
    parser.add_argument("--volume", type=int, help="examples per slice per day (default 1000)")
    parser.add_argument(
        "--warmup", type=int, default=14, help="first days, unscored: they train the first version"
    )
    parser.add_argument(
        "--policy",
        type=Path,
        action="append",
        help="a Model manifest (repeatable; default "
        + " and ".join(p.name for p in DEFAULT_POLICIES)
        + "); the baselines train on the first one's dataWindow",
    )
    parser.add_argument(
        "--stream-file",
        type=Path,
        action="append",
        default=[],
        help="a stream file to replay (repeatable; CSV, see docs/bench-loop.md); then only "
        "the --streams named are generated",
    )
    parser.add_argument(
        "--whole-window",
        action="store_true",
        help="the trainer trains every slice on the whole data window (it ignores "
        "MODELLOOP_FAILING_SINCE), as the example trainer's --whole-window",
    )
    parser.add_argument("--out", type=Path, default=Path(".tmp/bench-loop"), help="plots go here")
    parser.add_argument("--short", action="store_true", help=f"CI: {SHORT}, no plots")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    args = parser.parse_args(argv)
    defaults = SHORT if args.short else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, None if name == "streams" and args.stream_file else value)
    unknown = set((args.streams or "").split(",")) - {"", *KINDS}
    if unknown:
        parser.error(f"unknown stream {', '.join(sorted(unknown))}: one of {', '.join(KINDS)}")
    return args


def streams(args: argparse.Namespace) -> Iterator[tuple[Stream, int]]:
    """Every stream to replay, with the seed of its runs."""
    seeds = [int(s) for s in _numbers(args.seeds)]
    lags = _numbers(args.lag)
    for kind in (args.streams or "").split(","):
        if not kind:
            continue
        for seed in seeds:
            stream = generate(kind, seed, args.days, args.warmup, args.volume, lags[0])
            for lag in lags:
                yield with_lag(stream, lag), seed
    for path in args.stream_file:
        stream = read_stream(path, lags[0])
        # A file with label times replays them; one without gets them from each lag.
        variants = [stream] if stream.lag is None else [with_lag(stream, lag) for lag in lags]
        for variant in variants:
            for seed in seeds:
                yield variant, seed


def replay(
    stream: Stream, seed: int, paths: list[Path], warmup: int, whole_window: bool = False
) -> list[Result]:
    policies: list[Policy] = [load_policy(path, stream.slices) for path in paths]
    retraining = next((p.spec.retraining for p in policies if p.spec.retraining), None)
    window = retraining.data_window.delta if retraining else DEFAULT_WINDOW
    runs = [run_policy(stream, p, warmup, seed, whole_window) for p in policies]
    runs += [
        run_baseline(stream, name, every, warmup, window.total_seconds(), seed)
        for name, every in BASELINES
    ]
    return [Result(stream.name, stream.lag, seed, run) for run in runs]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    began = time.perf_counter()
    try:
        results = [
            result
            for stream, seed in streams(args)
            for result in replay(
                stream, seed, args.policy or list(DEFAULT_POLICIES), args.warmup, args.whole_window
            )
        ]
    except (PolicyError, StreamFileError) as error:
        print(f"bench-loop: {error}", file=sys.stderr)
        return 2
    if args.json:
        print("[\n" + ",\n".join(json.dumps(r.to_json()) for r in results) + "\n]")
    else:
        print(table(results))
    if not (args.short or args.no_plots):
        for path in plot(results, args.out):
            print(f"wrote {path}", file=sys.stderr)
    print(f"bench-loop: {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
