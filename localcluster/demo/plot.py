"""The demo's picture: accuracy per slice as users were served it, the traffic split
between versions, and the decisions marked where they happened."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, never a window
import matplotlib.pyplot as plt

from localcluster.demo.timeline import Mark

Series = tuple[Sequence[float], Sequence[float]]  # seconds since the start, values
COLORS = {"mobile": "tab:red", "web": "tab:blue"}


def draw(
    path: Path,
    accuracy: Mapping[str, Series],
    shares: Mapping[str, Series],
    marks: Sequence[tuple[Mark, str]],
    objective: float,
    title: str,
) -> None:
    """``accuracy``: slice -> served accuracy; ``shares``: version -> percent of traffic;
    ``marks``: decisions with their short labels."""
    figure, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(11, 6.5), height_ratios=(3, 1.3), layout="constrained"
    )
    for slice_, (times, values) in sorted(accuracy.items()):
        top.plot(times, values, label=f"{slice_} (served)", color=COLORS.get(slice_), lw=1.8)
    top.axhline(objective, color="grey", ls="--", lw=1, label=f"objective (min {objective:g})")
    top.set_ylabel("accuracy, 10s window")
    top.set_ylim(0.3, 1.0)
    top.set_title(title, loc="left", fontsize=11)
    for version, (times, values) in sorted(shares.items()):
        bottom.step(times, values, where="post", label=version, lw=1.8)
    bottom.set_ylabel("traffic %")
    bottom.set_ylim(-5, 105)
    bottom.set_xlabel("seconds since the demo started")
    for axis in (top, bottom):
        for mark, _ in marks:
            axis.axvline(mark.at, color="black", alpha=0.25, lw=1)
        axis.grid(alpha=0.2)
    for i, (mark, label) in enumerate(marks):
        top.annotate(
            label,
            (mark.at, 0.31 + 0.065 * (i % 4)),
            fontsize=8,
            rotation=0,
            xytext=(3, 0),
            textcoords="offset points",
        )
    top.legend(loc="upper right", fontsize=8)
    bottom.legend(loc="center right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
