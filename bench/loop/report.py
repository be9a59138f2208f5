"""The benchmark's output: a table per stream, the runs as JSON, a plot per stream."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .ledger import Run

COLUMNS = ("accuracy", "worstSlice", "trainings", "rejected", "rolledBack")
HEADINGS = ("accuracy", "worst slice", "trainings", "rejected", "rolled back")


@dataclass(frozen=True)
class Result:
    stream: str
    lag: float | None  # None: the stream file gives the label times
    seed: int
    run: Run

    @property
    def group(self) -> str:
        return f"{self.stream}, label lag {_lag(self.lag)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "lag": self.lag,
            "seed": self.seed,
            "days": len(self.run.accuracy),
            **self.run.figures(),
            "trainingDays": [[t.day, t.outcome] for t in self.run.trainings],
        }


def _groups(results: Sequence[Result]) -> dict[str, list[Result]]:
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    return groups


def _number(column: str, value: float) -> str:
    if column in ("accuracy", "worstSlice"):
        return f"{value:.4f}"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _cell(column: str, values: list[float]) -> str:
    """The mean over seeds, then each seed's value when they differ."""
    mean = _number(column, float(np.mean(values)))
    if len(set(values)) < 2:
        return mean
    return f"{mean} ({' '.join(_number(column, v) for v in values)})"


def _lag(lag: float | None) -> str:
    return "file" if lag is None else f"{lag:g}d"


def table(results: Sequence[Result]) -> str:
    """A Markdown table per stream: a row per label lag and policy, each figure the mean
    over the seeds and, in parentheses, each seed's."""
    streams: dict[str, list[Result]] = {}
    for r in results:
        streams.setdefault(r.stream, []).append(r)
    out = []
    for stream, members in streams.items():
        seeds = sorted({r.seed for r in members})
        days = len(members[0].run.accuracy)
        plural = "s" if len(seeds) > 1 else ""
        out += [f"### {stream}: {days} days, seed{plural} {', '.join(map(str, seeds))}", ""]
        out.append("| lag | policy | " + " | ".join(HEADINGS) + " |")
        out.append("|" + "---|" * (2 + len(HEADINGS)))
        rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in members:
            rows.setdefault((_lag(r.lag), r.run.policy), []).append(r.run.figures())
        for key, figures in rows.items():
            cells = [_cell(c, [float(f[c]) for f in figures]) for c in COLUMNS]
            out.append("| " + " | ".join((*key, *cells)) + " |")
        out.append("")
    return "\n".join(out)


def plot(results: Sequence[Result], out: Path) -> list[Path]:
    """Per stream and lag, for its first seed: the daily accuracy of each policy and
    baseline (all slices, and the worst slice), and a timeline of their trainings
    (x: rejected by the gate or rolled back in the canary)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for group, members in _groups(results).items():
        seed = min(r.seed for r in members)
        runs = [r.run for r in members if r.seed == seed]
        figure, axes = plt.subplots(
            3, 1, figsize=(11, 8), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.4]}
        )
        for row, run in enumerate(runs):
            color, style = f"C{row}", "--" if run.baseline else "-"
            axes[0].plot(run.accuracy, style, color=color, linewidth=0.9, label=run.policy)
            axes[1].plot(run.worst, style, color=color, linewidth=0.9)
            for failed in (False, True):
                days = [
                    t.day
                    for t in run.trainings
                    if (t.outcome in ("rejected", "rolledBack")) == failed
                ]
                axes[2].plot(
                    days, [row] * len(days), "x" if failed else "|", color=color, markersize=6
                )
        axes[0].set_ylabel("accuracy, all slices")
        axes[1].set_ylabel("accuracy, worst slice")
        axes[2].set_yticks(range(len(runs)), [run.policy for run in runs], fontsize="small")
        axes[2].set_ylim(len(runs) - 0.5, -0.5)
        axes[2].set_xlabel("day")
        axes[0].set_title(
            f"{group} (seed {seed}): daily accuracy; trainings (x: rejected or rolled back)"
        )
        axes[0].legend(loc="lower left", fontsize="small", ncol=len(runs))
        for axis in axes:
            axis.grid(alpha=0.3)
        figure.tight_layout()
        path = out / f"{members[0].stream}-lag{_lag(members[0].lag)}.png"
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    return written
