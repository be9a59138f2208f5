"""``python -m bench.scale.stacks FILE``: where a py-spy capture's samples went.

Reads collapsed stacks (``py-spy record --format=raw``, as ``bench.scale --cpu-profile``
writes them: one line per distinct stack, frames joined by ``;``, then its sample count)
and prints the functions holding the most samples, by their own time (the sample's
innermost frame) and by the time under them (any frame of the sample).

    python -m bench.scale.stacks .tmp/bench/pyspy-operator.txt --top 30
    python -m bench.scale.stacks FILE --under reconcile   # only samples under a function
"""

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# A frame as py-spy writes it: "name (path/to/file.py:123)"; the line is dropped so a
# function's samples add up across its lines.
FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True)
class Sample:
    frames: tuple[str, ...]  # outermost first, each "name (file)"
    count: int


def function(frame: str) -> str | None:
    """``name (file)`` of a frame; None if it is not one. py-spy already writes library
    paths from their package; the operator's own are cut to theirs."""
    match = FRAME.match(frame.strip())
    if match is None:
        return None
    path = match["file"].rpartition("/operator/")[2]
    return f"{match['name']} ({path})"


def samples(lines: Iterable[str]) -> Iterator[Sample]:
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(f for f in map(function, stack.split(";")) if f is not None)
        if frames:
            yield Sample(frames, int(count))


def tally(found: Iterable[Sample], under: str | None) -> tuple[int, Counter[str], Counter[str]]:
    """All samples counted, and by function: its own samples and those under it (each
    sample once per function, however deep the recursion)."""
    total, own, inclusive = 0, Counter[str](), Counter[str]()
    for sample in found:
        if under is not None and not any(under in f for f in sample.frames):
            continue
        total += sample.count
        own[sample.frames[-1]] += sample.count
        for frame in set(sample.frames):
            inclusive[frame] += sample.count
    return total, own, inclusive


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale.stacks", description=__doc__)
    parser.add_argument("capture", type=Path, help="collapsed stacks (py-spy --format=raw)")
    parser.add_argument("--top", type=int, default=25, help="functions in each list")
    parser.add_argument("--under", help="only samples with a frame containing this text")
    args = parser.parse_args(argv)
    with args.capture.open() as lines:
        total, own, inclusive = tally(samples(lines), args.under)
    print(f"{total} samples" + (f" under {args.under!r}" if args.under else ""))
    for title, counts in (("own", own), ("under", inclusive)):
        print(f"\nby {title} samples:")
        for name, count in counts.most_common(args.top):
            print(f"{100 * count / max(total, 1):6.1f} %  {count:7d}  {name}")


if __name__ == "__main__":
    main()
