"""From one evaluation of a Model to the canary-vs-stable pairs the analysis judges. Pure."""

from collections.abc import Iterable
from datetime import timedelta

from ..api.model import AnalysisRow, ModelSpec
from ..monitoring.evaluate import Evaluated
from .analysis import Judged, Pair


def build_pairs(
    spec: ModelSpec,
    evaluated: Iterable[Evaluated],
    stable: str,
    canary: str,
    traffic_age: timedelta | None = None,
) -> list[Pair]:
    """One pair per metric in the canary analysis and per slice it is evaluated on.
    ``traffic_age``: how old the canary traffic being judged is (labels mature after
    ``labels.delay``)."""
    values = {
        (e.series.kind, e.series.name, e.series.slice, e.series.version): e for e in evaluated
    }
    pairs = []
    for metric in spec.metrics:
        if not metric.canary.enabled:
            continue
        for slice_name in metric.slices or spec.slice_names():
            s = values.get(("metric", metric.name, slice_name, stable))
            c = values.get(("metric", metric.name, slice_name, canary))
            pairs.append(
                Pair(
                    metric=metric.name,
                    slice=slice_name,
                    higher_is_better=metric.higher_is_better,
                    stable=s.value if s else None,
                    canary=c.value if c else None,
                    stable_samples=s.samples if s else None,
                    canary_samples=c.samples if c else None,
                    test=metric.canary.test,
                    absolute=metric.canary.absolute,
                    relative=metric.canary.relative,
                    min_samples=metric.min_samples,
                    early=metric.canary.early,
                    label_delay=metric.labels.delay.delta if metric.labels else None,
                    traffic_age=traffic_age,
                    min_coverage=metric.labels.min_coverage if metric.labels else 0.0,
                    stable_coverage=s.coverage if s else None,
                    canary_coverage=c.coverage if c else None,
                )
            )
    for drift in spec.drift:
        if drift.canary is None:
            continue
        for slice_name in drift.slices or spec.slice_names():
            shift = values.get(("shift", drift.name, slice_name, canary))
            pairs.append(
                Pair(
                    metric=drift.name,
                    slice=slice_name,
                    higher_is_better=False,
                    stable=0.0,  # stable's distribution is the reference: no shift
                    canary=shift.value if shift else None,
                    canary_samples=shift.samples if shift else None,
                    test="threshold",
                    absolute=drift.threshold,
                    min_samples=drift.min_samples,
                    early=True,
                    statistic=drift.test,
                )
            )
    return pairs


def rows(judged: list[Judged]) -> list[AnalysisRow]:
    """The analysis table of ``status.canary``."""
    return [
        AnalysisRow(
            metric=j.pair.metric,
            slice=j.pair.slice,
            outcome=j.outcome,
            stable=j.pair.stable,
            canary=j.pair.canary,
            stable_samples=j.pair.stable_samples,
            canary_samples=j.pair.canary_samples,
            p_value=j.p_value,
            code=j.code.value,
            reason=j.reason[:512],
        )
        for j in judged
    ]
