"""``make demo`` (``python -m localcluster.demo``): see loop.py, or observe.py when
KUBECONFIG names a cluster."""

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path

from localcluster.demo import loop as whole_loop
from localcluster.demo import observe
from localcluster.demo.loop import FULL, SMOKE, DemoFailed, Loop

REPO = Path(__file__).parents[2]
WORKDIR = REPO / ".tmp" / "demo"


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("KUBECONFIG"):
        print(
            f"KUBECONFIG={os.environ['KUBECONFIG']}: running the operator on that cluster with "
            "an observe-only example (the whole loop runs on a local control plane: unset "
            "KUBECONFIG for it)"
        )
        return observe.main(argv)
    parser = argparse.ArgumentParser(
        prog="make demo",
        description=whole_loop.__doc__,
    )
    parser.add_argument("--smoke", action="store_true", help="shorter healthy start and end (CI)")
    parser.add_argument("--plot", type=Path, help="also copy the PNG plot to this path")
    args = parser.parse_args(argv)
    # SIGTERM stops the demo as Ctrl-C does: every process it started ends with it.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    shutil.rmtree(WORKDIR, ignore_errors=True)
    loop = Loop(WORKDIR, SMOKE if args.smoke else FULL)
    try:
        outcome = loop.run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except DemoFailed as failure:
        print(f"\ndemo failed: {failure}", file=sys.stderr)
        if loop.operator is not None:
            print(
                f"operator log ({loop.operator.log}):\n{loop.operator.log_tail()}", file=sys.stderr
            )
        return 1
    finally:
        loop.close()
    print("\n" + outcome.summary())
    if args.plot:
        shutil.copyfile(outcome.plot, args.plot)
        print(f"Plot copied to {args.plot}")
    problems = outcome.problems()
    for problem in problems:
        print(f"demo failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
