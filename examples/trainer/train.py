"""An example ModelLoop trainer: churn prediction on a synthetic stream whose concept
drifts over time, differently per slice (churn.py; CHURN_CONCEPT may change it).

It does what the contract asks: trains only on the data window it is given
(MODELLOOP_DATA_START..END), keeps the window's last 20% as held-out data, writes
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
from datetime import datetime
from pathlib import Path

import numpy as np
from churn import SLICES, Concept, design, evaluate, fit, hits, stream

from modelloop.sdk import TERMINATION_LOG, Pairs, count_pairs, report


def instant(name: str) -> float:
    return datetime.fromisoformat(os.environ[name]).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--result-path", help=f"default: $MODELLOOP_TERMINATION_LOG or {TERMINATION_LOG}"
    )
    args = parser.parse_args()
    start, end = instant("MODELLOOP_DATA_START"), instant("MODELLOOP_DATA_END")
    x, y, s, t = stream(start, end, Concept.from_json(os.environ.get("CHURN_CONCEPT")))
    split = np.quantile(t, 0.8)
    train, held = t < split, t >= split
    w = fit(design(x[train], s[train]), y[train])

    output = Path(os.environ["MODELLOOP_OUTPUT_URI"].removeprefix("file://"))
    output.mkdir(parents=True, exist_ok=True)
    np.savez(output / "model.npz", weights=w)
    np.savez(output / "heldout.npz", x=x[held], y=y[held], s=s[held])
    candidate = evaluate(w, x[held], y[held], s[held])
    champion = None
    pairs: dict[tuple[str, str], Pairs] = {}
    base = os.environ.get("MODELLOOP_BASE_URI", "").removeprefix("file://")
    if base:
        base_w = np.load(Path(base) / "model.npz")["weights"]
        champion = evaluate(base_w, x[held], y[held], s[held])
        mine, theirs = hits(w, x[held], y[held], s[held]), hits(base_w, x[held], y[held], s[held])
        pairs = {
            ("accuracy", name): count_pairs(mine[s[held] == i], theirs[s[held] == i])
            for i, name in enumerate(SLICES)
        }
    held_out = {name: int((s[held] == i).sum()) for i, name in enumerate(SLICES)}
    report(
        f"file://{output}",
        candidate,
        champion,
        path=args.result_path,
        samples={key: held_out[key[1]] for key in candidate},
        pairs=pairs,
    )
    print(
        json.dumps(
            {
                "trainedOn": int(train.sum()),
                "candidate": {f"{m}/{sl}": round(v, 4) for (m, sl), v in candidate.items()},
                "champion": {f"{m}/{sl}": round(v, 4) for (m, sl), v in (champion or {}).items()},
            }
        )
    )


if __name__ == "__main__":
    main()
