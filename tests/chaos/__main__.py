"""``python -m tests.chaos [--kills N] [--seed S] [--short]``: prints the run as it goes,
then its figures; exits 1 when an invariant is violated or the run could not finish."""

import argparse
import dataclasses
import shutil
import signal
import sys
from pathlib import Path

from tests.chaos.plan import FULL, SHORT, make_plan
from tests.chaos.run import Chaos, ChaosFailed

REPO = Path(__file__).parents[2]
WORKDIR = REPO / ".tmp" / "chaos"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument(
        "--short", action="store_true", help="the CI variant: fewer Models and kills"
    )
    parser.add_argument(
        "--kills", type=int, help="SIGKILLs of the operator (default 100; short 15)"
    )
    parser.add_argument("--models", type=int, help="Models (default 3; short 2)")
    parser.add_argument("--seed", type=int, default=1, help="what the run chooses (default 1)")
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    args = parser.parse_args(argv)
    settings = SHORT if args.short else FULL
    if args.kills is not None:
        settings = dataclasses.replace(settings, kills=args.kills)
    if args.models is not None:
        settings = dataclasses.replace(settings, models=args.models)
    # SIGTERM stops the run as Ctrl-C does: every process it started ends with it.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    args.workdir = args.workdir.resolve()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    chaos = Chaos(args.workdir, settings, make_plan(settings, args.seed))
    try:
        figures = chaos.run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ChaosFailed as failure:
        print(f"\nchaos run failed: {failure}", file=sys.stderr)
        for log in chaos.operator_logs():
            print(f"--- {log} (last lines)\n{_tail(log)}", file=sys.stderr)
        return 1
    finally:
        chaos.close()
    report = figures.render()
    (args.workdir / "report.txt").write_text(report + "\n")
    print("\n" + report)
    return 1 if figures.violations else 0


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
