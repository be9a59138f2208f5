"""An example ModelLoop trainer: churn prediction on a synthetic stream whose concept
drifts over time, differently per slice (churn.py; CHURN_CONCEPT may change it).

It does what the contract asks: trains only on the data window it is given
(MODELLOOP_DATA_START..END) — for a slice named in MODELLOOP_FAILING_SINCE whose
champion's accuracy visibly fell in the window, only its data since that fall
(churn.training_rows; ``--whole-window`` turns it off) — keeps each slice's last 20% as
held-out data, writes
the artifact below MODELLOOP_OUTPUT_URI (a local path here; a volume in a pod),
and reports AUC and accuracy per slice for itself and for the champion (the base
version's artifact, MODELLOOP_BASE_URI) recomputed on the same held-out data, with,
for accuracy, the paired counts (the examples only one of the two predicts right)
that let the gate make a paired test.

    python examples/trainer/train.py --result-path /tmp/result.json
"""

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from churn import (
    SLICES,
    Concept,
    design,
    evaluate,
    failing_since,
    fit,
    held_out,
    hits,
    stream,
    training_rows,
)

from modelloop.sdk import TERMINATION_LOG, Pairs, count_pairs, report


def instant(name: str) -> float:
    return datetime.fromisoformat(os.environ[name]).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--result-path", help=f"default: $MODELLOOP_TERMINATION_LOG or {TERMINATION_LOG}"
    )
    parser.add_argument(
        "--whole-window",
        action="store_true",
        help="train every slice on the whole data window, even one whose world changed in it",
    )
    args = parser.parse_args()
    start, end = instant("MODELLOOP_DATA_START"), instant("MODELLOOP_DATA_END")
    x, y, s, t = stream(start, end, Concept.from_json(os.environ.get("CHURN_CONCEPT")))
    base = os.environ.get("MODELLOOP_BASE_URI", "").removeprefix("file://")
    base_w = np.load(Path(base) / "model.npz")["weights"] if base else None
    onset = failing_since(os.environ.get("MODELLOOP_FAILING_SINCE"), SLICES)
    keep = np.ones(len(t), dtype=np.bool_)
    if base_w is not None and not args.whole_window:
        keep = training_rows(t, s, hits(base_w, x, y, s), onset)
    held = held_out(t, s, keep)
    train = keep & ~held
    w = fit(design(x[train], s[train]), y[train])

    output = Path(os.environ["MODELLOOP_OUTPUT_URI"].removeprefix("file://"))
    output.mkdir(parents=True, exist_ok=True)
    np.savez(output / "model.npz", weights=w)
    np.savez(output / "heldout.npz", x=x[held], y=y[held], s=s[held])
    candidate = evaluate(w, x[held], y[held], s[held])
    champion = None
    pairs: dict[tuple[str, str], Pairs] = {}
    if base_w is not None:
        champion = evaluate(base_w, x[held], y[held], s[held])
        mine, theirs = hits(w, x[held], y[held], s[held]), hits(base_w, x[held], y[held], s[held])
        pairs = {
            ("accuracy", name): count_pairs(mine[s[held] == i], theirs[s[held] == i])
            for i, name in enumerate(SLICES)
        }
    counts = {name: int((s[held] == i).sum()) for i, name in enumerate(SLICES)}
    report(
        f"file://{output}",
        candidate,
        champion,
        path=args.result_path,
        samples={key: counts[key[1]] for key in candidate},
        pairs=pairs,
    )
    print(
        json.dumps(
            {
                "trainedOn": int(train.sum()),
                # Per failing slice, its first example trained on: the window's start,
                # or the change.
                "since": {
                    SLICES[i]: datetime.fromtimestamp(t[keep & (s == i)].min(), UTC).isoformat()
                    for i in onset
                    if (keep & (s == i)).any()
                },
                "candidate": {f"{m}/{sl}": round(v, 4) for (m, sl), v in candidate.items()},
                "champion": {f"{m}/{sl}": round(v, 4) for (m, sl), v in (champion or {}).items()},
            }
        )
    )


if __name__ == "__main__":
    main()
