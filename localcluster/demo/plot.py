"""The demo's picture: accuracy per slice as users were served it, as the late labels
told it and as estimated from the scores before them; the label coverage per version;
the traffic split between versions; and the decisions marked where they happened."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, never a window
import matplotlib.pyplot as plt

from localcluster.demo.timeline import Mark

Series = tuple[Sequence[float], Sequence[float]]  # seconds since the start, values
COLORS = {"mobile": "tab:red", "web": "tab:blue"}
# How each view of the accuracy is drawn, and named in the legend.
VIEWS = {
    "served": ("-", 1.8, "as served"),
    "labels": (":", 1.6, "as the labels tell"),
    "estimated": ("--", 1.2, "estimated from scores"),
}


@dataclass(frozen=True)
class Panels:
    """What is drawn: ``accuracy``: view (``VIEWS``) -> slice -> series, with the
    objective; ``coverage``: version -> label coverage, with the minimum the Model
    waits for; ``shares``: version -> percent of traffic."""

    accuracy: Mapping[str, Mapping[str, Series]]
    objective: float
    coverage: Mapping[str, Series]
    min_coverage: float
    shares: Mapping[str, Series]


def draw(path: Path, panels: Panels, marks: Sequence[tuple[Mark, str]], title: str) -> None:
    """``marks``: decisions with their short labels."""
    figure, (top, middle, bottom) = plt.subplots(
        3, 1, sharex=True, figsize=(11, 8), height_ratios=(3, 1.2, 1.2), layout="constrained"
    )
    for view, (style, width, name) in VIEWS.items():
        for slice_, (times, values) in sorted(panels.accuracy.get(view, {}).items()):
            top.plot(
                times,
                values,
                ls=style,
                lw=width,
                color=COLORS.get(slice_),
                label=f"{slice_} {name}",
            )
    objective = panels.objective
    top.axhline(objective, color="grey", ls="--", lw=1, label=f"objective (min {objective:g})")
    top.set_ylabel("accuracy, 10s window")
    top.set_ylim(0.3, 1.12)  # room for the legend above the lines
    top.set_title(title, loc="left", fontsize=11)
    for version, (times, values) in sorted(panels.coverage.items()):
        middle.plot(times, values, lw=1.6, label=version)
    middle.axhline(
        panels.min_coverage,
        color="grey",
        ls="--",
        lw=1,
        label=f"minCoverage {panels.min_coverage:g}",
    )
    middle.set_ylabel("label coverage")
    middle.set_ylim(-0.05, 1.15)
    for version, (times, values) in sorted(panels.shares.items()):
        bottom.step(times, values, where="post", label=version, lw=1.8)
    bottom.set_ylabel("traffic %")
    bottom.set_ylim(-5, 105)
    bottom.set_xlabel("seconds since the demo started")
    for axis in (top, middle, bottom):
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
    top.legend(loc="upper left", fontsize=7, ncol=4)
    middle.legend(loc="lower right", fontsize=8)
    bottom.legend(loc="center right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
