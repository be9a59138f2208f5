"""The fleet a scale run creates, built from a seed: pure builders of the Models, their
ModelVersions and the synthetic series Prometheus answers from.

Every Model has two versions and 2-10 slices and is served by the replicas traffic
provider. Most retrain on a breach (the stable version serves; the older one is Retired,
as a restore from a backup would leave them; a breach of either metric starts a training
Job, whose pod kwok runs and never ends); ``canaries`` of them promote, with an older
stable and a newer Pending candidate the operator validates and then rolls out, one
long step at 10% so that the canary stays in flight for the whole run, analysed every
30 s (or as asked). With shards, the Models are labelled round-robin across them. The
metrics come from the evaluation benchmark's grouped MetricTemplates
(bench.evaluation.template): one query per template answers every Model.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.evaluation import GOOD, RATE, quality_metrics, template
from modelloop.api.vocabulary import ANNOTATION_SERVED, GROUP, LABEL_ROLE, LABEL_SHARD, VERSION

Obj = dict[str, Any]
NAMESPACE = "bench-scale"
PROVIDER = "bench"
METRICS = 2  # MetricTemplates quality-0, quality-1 (bench.evaluation.template)
MIN_SLICES, MAX_SLICES = 2, 10
EDIT_ANNOTATION = "bench.modelloop.dev/edit"
SERVED_AT = "2026-01-01T00:00:00Z"  # when the versions that serve first took traffic
BREACH_MIN = 0.99  # an objective above every series' ratio (GOOD): a breach at once
SERVING_IMAGE = "x:1"  # kwok "runs" any image
ANALYSIS_SECONDS = 30


def canary_rollout(analysis_seconds: float) -> Obj:
    """The first step outlasts any run: the canary is analysed, never promoted."""
    return {
        "steps": [
            {"weight": 10, "duration": "2h"},
            {"weight": 50, "duration": "2h"},
            {"weight": 100, "duration": "0s"},
        ],
        "analysis": {
            "interval": f"{analysis_seconds:g}s",
            "stepTimeout": "4h",
            "maxInconclusive": 10000,
        },
    }


@dataclass(frozen=True)
class ModelPlan:
    name: str
    slices: int
    canary: bool
    shard: str | None = None  # its modelloop.dev/shard label

    @property
    def stable(self) -> str:
        """The serving version: the newer one, or the older one while a canary rolls."""
        return f"{self.name}-v1" if self.canary else f"{self.name}-v2"

    @property
    def served(self) -> tuple[str, ...]:
        """The versions with traffic, hence with series."""
        return (f"{self.name}-v1", f"{self.name}-v2") if self.canary else (self.stable,)

    @property
    def slice_names(self) -> list[str]:
        return [f"r{r}" for r in range(self.slices)]


def plan_fleet(models: int, canaries: int, seed: int, shards: int = 0) -> list[ModelPlan]:
    """``models`` Models, ``canaries`` of them (spread by the seed) rolling a canary; with
    ``shards``, Model m is shard ``s{m % shards}``'s."""
    rng = random.Random(seed)
    rolling = set(rng.sample(range(models), min(canaries, models)))
    return [
        ModelPlan(
            f"m{m:04d}",
            rng.randint(MIN_SLICES, MAX_SLICES),
            m in rolling,
            shard_name(m % shards) if shards else None,
        )
        for m in range(models)
    ]


TRAINING_JOB: Obj = {
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "trainer", "image": SERVING_IMAGE}],
            }
        },
    }
}


def breaching(plans: list[ModelPlan], share: float, seed: int) -> list[ModelPlan]:
    """``share`` of the Models that retrain (at least one), drawn from the seed."""
    retraining = [p for p in plans if not p.canary]
    count = min(len(retraining), max(1, round(share * len(retraining))))
    return sorted(random.Random(seed + 1).sample(retraining, count), key=lambda p: p.name)


def breach_patch() -> Obj:
    """Every metric's objective raised above what its series give: the Model breaches at
    its next evaluation, as if its data had drifted, and starts a training."""
    metrics = [{**m, "objective": {"min": BREACH_MIN}} for m in quality_metrics(METRICS)]
    return {"spec": {"metrics": metrics}}


def shard_name(index: int) -> str:
    return f"s{index}"


def templates() -> list[Obj]:
    return [template(k) for k in range(METRICS)]


def model_manifest(plan: ModelPlan, analysis_seconds: float = ANALYSIS_SECONDS) -> Obj:
    spec: Obj = {
        "metricsProvider": PROVIDER,
        "serving": {
            "replicas": 1,
            "template": {"spec": {"containers": [{"name": "s", "image": SERVING_IMAGE}]}},
        },
        "traffic": {"provider": "replicas"},
        "slices": [{"name": s, "matchLabels": {"region": s}} for s in plan.slice_names],
        "metrics": quality_metrics(METRICS),
        "automation": "promote" if plan.canary else "retrain",
    }
    if not plan.canary:
        spec["retraining"] = {
            "triggers": {"onBreach": [m["name"] for m in spec["metrics"]]},
            "cooldown": "1h",
            "dataWindow": "1d",
            "outputURI": f"s3://bench/{plan.name}",
            "job": TRAINING_JOB,
        }
    if plan.canary:
        spec["rollout"] = canary_rollout(analysis_seconds)
        # Fresh verdicts for every analysis, as Flagger queries at every interval.
        spec["evaluationInterval"] = f"{analysis_seconds:g}s"
    labels = {LABEL_SHARD: plan.shard} if plan.shard else {}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": plan.name, "labels": labels},
        "spec": spec,
    }


def _version(
    plan: ModelPlan, name: str, labels: dict[str, str], spec: Obj, served: bool = False
) -> Obj:
    """``served``: it took production traffic, and its metadata says so as the operator
    leaves it (otherwise the operator's first pass records it: a write per version)."""
    annotations = {ANNOTATION_SERVED: SERVED_AT} if served else {}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"model": plan.name, "uri": f"s3://bench/{plan.name}/{name}", **spec},
    }


def version_manifests(plan: ModelPlan, placed: bool = False) -> list[tuple[Obj, Obj | None]]:
    """Each ModelVersion with the status the harness writes after creating it (None: the
    operator judges it). The stable one carries the role label. ``placed``: each carries
    its Model's shard label too, as that shard's operator labels them (the shards whose
    operator the run leaves out: otherwise every running shard would watch them as
    unplaced for the whole run)."""
    older, newer = f"{plan.name}-v1", f"{plan.name}-v2"
    shard = {LABEL_SHARD: plan.shard} if placed and plan.shard else {}
    plain, stable = shard, {**shard, LABEL_ROLE: "stable"}
    if not plan.canary:
        return [
            (_version(plan, older, plain, {}, served=True), {"phase": "Retired"}),
            (_version(plan, newer, stable, {}, served=True), {"phase": "Serving"}),
        ]
    # As good as the champion on every slice: the default offline gate validates it.
    offline = [
        {"metric": f"quality-{k}", "slice": s, "value": GOOD, "samples": 1000}
        for k in range(METRICS)
        for s in plan.slice_names
    ]
    candidate = {"metrics": {"candidate": offline, "champion": offline}}
    return [
        (_version(plan, older, stable, {}, served=True), {"phase": "Serving"}),
        (_version(plan, newer, plain, candidate), None),
    ]


def edit_patch(token: str) -> Obj:
    """A spec edit that changes every version's Deployment (its pod template)."""
    annotations = {EDIT_ANNOTATION: token}
    return {"spec": {"serving": {"template": {"metadata": {"annotations": annotations}}}}}


def _carries(template: Obj | None, token: str) -> bool:
    """Whether a pod template carries the edit ``edit_patch(token)`` made."""
    annotations = ((template or {}).get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(EDIT_ANNOTATION) == token)


def model_edited(model: Obj, token: str) -> bool:
    return _carries(((model.get("spec") or {}).get("serving") or {}).get("template"), token)


def edited(deployment: Obj, token: str) -> bool:
    return _carries((deployment.get("spec") or {}).get("template"), token)


def series_count(plans: list[ModelPlan]) -> int:
    return sum(2 * METRICS * p.slices * len(p.served) for p in plans)


def openmetrics(plans: list[ModelPlan], start: int, end: int, step: int) -> Iterator[str]:
    """Counters of predictions and correct ones (every slice GOOD) for every served version,
    metric and slice, from ``start`` to ``end`` (seconds, ``end`` may lie ahead: the run
    reads the present of a history written beforehand), in the labels the templates group
    by. Lines, to be streamed to a file."""
    for family, ratio in (("bench_predictions", 1.0), ("bench_correct", GOOD)):
        yield f"# TYPE {family} counter\n"
        for plan in plans:
            for version in plan.served:
                for k in range(METRICS):
                    for s in plan.slice_names:
                        labels = (
                            f'namespace="{NAMESPACE}",model="{plan.name}",version="{version}",'
                            f'region="{s}",metric="q{k}"'
                        )
                        yield "".join(
                            f"{family}_total{{{labels}}} {RATE * ratio * (t - start):.1f} {t}\n"
                            for t in range(start, end + 1, step)
                        )
    yield "# EOF\n"
