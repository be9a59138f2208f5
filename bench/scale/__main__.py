"""``make bench-scale N=...``: the whole operator on the local control plane with N Models
(docs/scale.md).

    python -m bench.scale --models 100              # figures in .tmp/bench/scale-100.json
    python -m bench.scale --models 5 --short        # a quick check of the harness itself

A real control plane (kwok nodes), the CRDs and the chart's RBAC, a real Prometheus
backfilled with every Model's series (answering every query of the run), and the
operator as the chart runs it (a process of its own, leader election on, not verbose).
The run creates the fleet (bench/scale/world.py), waits for every Model to be Ready,
lets the canaries start, measures a steady window (nothing changes), then edits every
Model's spec at once and times each Deployment's update, then makes a share of the Models
breach at once and times each one's breach and training, then kills every operator (a
crash) and starts it again, and times its return and counts what it wrote.

    python -m bench.scale --models 10000 --shards 4  # four operators, one per shard

With ``--shards K`` the Models are labelled round-robin across K shards and K operators
run, one per shard (``--shard sI``, a Lease each); the figures are the sum of them, and
each shard's own (CPU, RSS, API reads per Model) are listed after them.

    python -m bench.scale --models 10000 --shards 4 --shards-running 1

runs the first shard's operator only: the whole fleet is created (the other shards'
versions placed in their shards, as their operators would label them), and its full lists
read every shard's objects, but the cluster serves, edits and breaches a quarter of it. A
shard's own figures in a fleet of N, in a fraction of the time the whole fleet takes.
"""

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from localcluster import binaries
from localcluster.apply import install_crds
from localcluster.chart import OPERATOR_NAMESPACE, RELEASE, operator_identity
from localcluster.controlplane import LocalControlPlane
from localcluster.processes import Process, free_port, http_ok
from localcluster.prometheus import PrometheusServer
from localcluster.waiting import wait_for

from bench.evaluation import NAMESPACES, TEMPLATES
from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import LABEL_MANAGED_BY, MANAGED_BY
from modelloop.handlers import RELIST_PERIODS
from modelloop.kube.rest import Kube, Obj
from modelloop.retraining.jobs import LABEL_TRAINING

from .measure import (
    ApiServer,
    Fleet,
    Reading,
    Scraper,
    Watch,
    clear_of_relists,
    combined,
    memory_mib,
    reset_peak,
    restarted,
)
from .report import (
    RESYNC_SECONDS,
    BreachBurst,
    Burst,
    Figures,
    Restart,
    ShardFigures,
    Window,
    breach_burst,
    burst,
    catch_up_edits,
    restart,
    spread,
    stored_bytes,
    table,
    window,
)
from .world import (
    ANALYSIS_SECONDS,
    NAMESPACE,
    PROVIDER,
    ModelPlan,
    breach_patch,
    breaching,
    edit_patch,
    model_manifest,
    openmetrics,
    plan_fleet,
    series_count,
    shard_name,
    templates,
    version_manifests,
)

REPO = Path(__file__).parents[2]
HISTORY_SECONDS = 360  # series before the run starts: more than a 5m window
STEP_SECONDS = 60
T = TypeVar("T")
# How often a restart's successors are asked for their reconcile count: "caught up" is
# known to this resolution. Each ask renders one counter, not the operator's /metrics.
CATCH_UP_POLL_SECONDS = 2.0
CATCH_UP_EDITS = 10  # Models edited during a restart's catch-up (at most a tenth)
CLIENTS = 4  # threads that create and edit, as a few kubectl processes would


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--models", type=int, default=100, help="N, the Models (default 100)")
    parser.add_argument(
        "--canaries",
        type=int,
        default=10,
        help="Models rolling a canary (default 10; at most N - 1: the breach burst needs a "
        "Model that retrains)",
    )
    parser.add_argument(
        "--steady-seconds",
        type=float,
        help=f"the steady window (default 90: three {RESYNC_SECONDS:g} s resyncs; --short: 30)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        help="wait after all are Ready and the canaries rolling, before the steady window "
        "(default 30; --short: 10)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=0,
        help="K operators, one per shard (default 0: one, unsharded)",
    )
    parser.add_argument(
        "--shards-running",
        type=int,
        help="with --shards K: operators for the first J shards only (default K). Every "
        "shard's Models and versions are created, and each operator's full lists read them "
        "all, but only the J shards' Models are served, evaluated, edited and breached: a "
        "shard's cost in a fleet of N, with the cluster doing J/K of the fleet's work",
    )
    parser.add_argument(
        "--analysis-interval",
        type=float,
        default=ANALYSIS_SECONDS,
        help=f"seconds between a canary's analyses (default {ANALYSIS_SECONDS})",
    )
    parser.add_argument(
        "--breaching",
        type=float,
        default=0.1,
        help="the share of the retraining Models made to breach at once (default 0.1)",
    )
    parser.add_argument(
        "--no-burst",
        action="store_true",
        help="skip the edit of every Model (at 10 000 Models it takes most of an hour here, "
        "bound by the API server's rollouts of every Deployment)",
    )
    parser.add_argument("--seed", type=int, default=1, help="slices and canaries (default 1)")
    parser.add_argument("--short", action="store_true", help="short windows: a check, no figures")
    parser.add_argument("--out", type=Path, help="default .tmp/bench/scale-N.json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--audit",
        action="store_true",
        help="the API server keeps an audit log in the work directory (implies --keep): "
        "every write, and what the operator wrote to Models, for `python -m bench.scale.audit`",
    )
    parser.add_argument(
        "--operator-source",
        type=Path,
        help="run the operator from this directory holding the modelloop package (e.g. "
        "another revision's operator/, for before-and-after figures); default: this tree's",
    )
    parser.add_argument(
        "--memory-profile",
        nargs="?",
        const="all",
        choices=["all", "restart"],
        help="run each operator under memray, every Python allocation traced (slower: the "
        "run's figures are not the operator's); its capture is written beside --out "
        "(read it with `python -m memray summary` or `flamegraph`). `restart`: only the "
        "operators started again, the run's other phases unprofiled (at 10 000 Models a "
        "whole run under memray takes too long)",
    )
    parser.add_argument(
        "--cpu-profile",
        action="store_true",
        help="sample each operator's Python stacks through the steady window (py-spy, from "
        "outside the process; between its first and last readings, so it holds the scrapes "
        "of the readings between), written beside --out as pyspy-SHARD.txt in collapsed "
        "form (read it with `python -m bench.scale.stacks FILE`)",
    )
    parser.add_argument(
        "--apiserver-profile",
        type=float,
        metavar="SECONDS",
        help="sample the API server's CPU for SECONDS from the start of the apply and of the "
        "burst (its /debug/pprof), written beside --out as apiserver-apply.pprof and "
        "apiserver-burst.pprof (read them with `go tool pprof -top`)",
    )
    args = parser.parse_args(argv)
    if args.steady_seconds is None:
        args.steady_seconds = 30.0 if args.short else 3 * RESYNC_SECONDS
    if args.settle_seconds is None:
        args.settle_seconds = 10.0 if args.short else RESYNC_SECONDS
    if args.models < 2:
        parser.error("--models must be at least 2: one rolls a canary, one retrains")
    args.canaries = min(args.canaries, args.models - 1)
    if args.shards_running is None:
        args.shards_running = args.shards
    elif not 1 <= args.shards_running <= args.shards:
        parser.error("--shards-running must be between 1 and --shards")
    args.out = args.out or REPO / ".tmp" / "bench" / f"scale-{args.models}.json"
    return args


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def commit() -> str:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return run.stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain") else "")


# --------------------------------------------------------------------------- Prometheus


def backfill(work: Path, plans: list[ModelPlan], horizon: int) -> PrometheusServer:
    """Every Model's series from a little before now to ``horizon`` seconds ahead, written
    as TSDB blocks (promtool), then a Prometheus reading them; checks it answers."""
    data = work / "prometheus" / "data"
    data.mkdir(parents=True)
    source = work / "series.om"
    now = int(time.time()) // STEP_SECONDS * STEP_SECONDS
    with source.open("w") as out:
        out.writelines(openmetrics(plans, now - HISTORY_SECONDS, now + horizon, STEP_SECONDS))
    promtool = binaries.prometheus().with_name("promtool")
    subprocess.run(
        [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    size = source.stat().st_size >> 20
    source.unlink()
    prometheus = PrometheusServer(work / "prometheus", {"global": {}})
    query = urllib.parse.urlencode({"query": "count(bench_predictions_total)"})
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?{query}", timeout=60) as answer:
        result = json.load(answer)["data"]["result"]
    counted = int(float(result[0]["value"][1])) if result else 0
    if counted != series_count(plans) // 2:
        raise RuntimeError(f"Prometheus holds {counted} series of {series_count(plans) // 2}")
    say(f"backfilled {size} MiB of OpenMetrics: {series_count(plans)} series")
    return prometheus


# --------------------------------------------------------------------------- the operator


# What the operator's image sets for the process (Dockerfile's ENV), besides its paths.
IMAGE_ENV = {"MALLOC_ARENA_MAX": "2"}


def start_operator(
    cluster: LocalControlPlane,
    work: Path,
    prometheus_url: str,
    source: Path | None,
    shard: str | None = None,
    memory_capture: Path | None = None,
    name: str = "operator",
) -> tuple[Process, str]:
    """``modelloop run`` with the chart's arguments (leader election, /metrics, no
    --verbose: localcluster.operator_process logs every event, which costs CPU at scale),
    cluster-wide as the chart's default, of one shard if named; returns it and its
    /metrics URL. With ``memory_capture``, under memray (in the same process), writing
    there: its high-water mark names the code that held the peak's memory."""
    providers = work / "providers.yaml"
    providers.write_text(
        yaml.safe_dump({"providers": [{"name": PROVIDER, "url": prometheus_url, "timeout": "30s"}]})
    )
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.operator.kubeconfig),
        "MODELLOOP_NAMESPACE": OPERATOR_NAMESPACE,
        "PYTHONUNBUFFERED": "1",
        **IMAGE_ENV,
    }
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source.resolve()), env.get("PYTHONPATH", "")])
    # Every Python object traced, not pymalloc's arenas: an arena outlives the peak that
    # made it, so arenas name the peak's code for memory later objects hold. Aggregated:
    # the capture holds the high-water mark and what is left at exit, not every
    # allocation (gigabytes for an operator at thousands of Models).
    profiled = ["-m", "memray", "run", "-q", "-f", "--aggregate", "--trace-python-allocators"]
    profiled += ["-o", str(memory_capture)]
    argv = [
        sys.executable,
        *(profiled if memory_capture is not None else []),
        "-m",
        "modelloop",
        "run",
        f"--providers={providers}",
        f"--metrics-address=127.0.0.1:{port}",
        f"--leader-elect={OPERATOR_NAMESPACE}/{RELEASE}",
        *([f"--shard={shard}"] if shard else []),
    ]
    process = Process(name, argv, work / "logs", env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}/metrics"

    def leading() -> bool:
        process.check_running()
        return "leading as" in process.log_text() and http_ok(url)

    try:
        wait_for(leading, 120, "the operator to lead", interval=0.5)
    except BaseException:
        process.stop()
        raise
    return process, url


# --------------------------------------------------------------------------- the fleet


def _in_parallel(
    work: Callable[[Kube, ModelPlan], None], plans: list[ModelPlan], kubeconfig: Path
) -> None:
    """``work(kube, plan)`` for every plan on CLIENTS threads, each with its own client."""
    local = threading.local()

    def run(plan: ModelPlan) -> None:
        if not hasattr(local, "kube"):
            local.kube = Kube.from_kubeconfig(str(kubeconfig))
        work(local.kube, plan)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(run, plans))


def late_breaches(
    chosen: list[str],
    breached: dict[str, float],
    jobs: dict[str, dict[str, float]],
    conditions_of: Callable[[str], list[Obj]],
    shown: int = 5,
) -> str:
    """Which of the breaching Models the harness has not seen in breach, or with no
    training Job, and for a few of each, their conditions as the API server holds them now:
    a stuck decision told from a late one."""
    missing = {
        "neither in breach nor with a Job": [
            m for m in chosen if m not in breached and m not in jobs
        ],
        "in breach, no Job": [m for m in chosen if m in breached and m not in jobs],
        "a Job, never seen in breach": [m for m in chosen if m in jobs and m not in breached],
    }
    lines = [f"{len(chosen)} breaching: {len(breached)} seen in breach, {len(jobs)} with a Job"]
    for what, names in missing.items():
        lines.append(f"{what}: {len(names)}")
        lines += told(names[:shown], conditions_of)
    return "\n".join(lines)


def told(names: list[str], conditions_of: Callable[[str], list[Obj]]) -> list[str]:
    """A line for each of ``names``: its conditions as the API server holds them now."""
    lines = []
    for name in names:
        said = "; ".join(
            f"{c.get('type')}={c.get('status')} {c.get('reason')}: {c.get('message')}"
            for c in conditions_of(name)
        )
        lines.append(f"  {name}: {said or 'no conditions'}")
    return lines


def conditions_reader(kubeconfig: Path) -> Callable[[str], list[Obj]]:
    """A Model's conditions, read from the API server when asked."""
    kube = Kube.from_kubeconfig(str(kubeconfig))

    def conditions_of(name: str) -> list[Obj]:
        model = kube.get(MODELS, NAMESPACE, name) or {}
        return list((model.get("status") or {}).get("conditions") or [])

    return conditions_of


def creator(
    analysis_seconds: float, on_applied: Callable[[str], None], running: list[str | None]
) -> Callable[[Kube, ModelPlan], None]:
    def create(kube: Kube, plan: ModelPlan) -> None:
        """Its versions first (with the status a restore would bring; placed in their
        shard if its operator is not running), then the Model."""
        on_applied(plan.name)
        for manifest, status in version_manifests(plan, placed=plan.shard not in running):
            kube.create(MODEL_VERSIONS, NAMESPACE, manifest)
            if status is not None:
                name = manifest["metadata"]["name"]
                kube.merge_patch(MODEL_VERSIONS, NAMESPACE, name, {"status": status}, sub="status")
        kube.create(MODELS, NAMESPACE, model_manifest(plan, analysis_seconds))

    return create


class Operator:
    """One operator process (one shard's, or the only one) and its readings."""

    def __init__(self, shard: str | None, process: Process, scraper: Scraper) -> None:
        self.shard, self.process, self.scraper = shard, process, scraper
        self.peaks: dict[str, float] = {}  # phase -> the peak RSS in it, MiB
        self.leading_since = time.monotonic()  # it is made once it leads


class Run:
    """One run's parts, and the waits that watch the operator stay up."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        # The whole fleet is created; the plans of the running shards' Models are the
        # ones every phase acts on and measures.
        self.fleet_plans = plan_fleet(args.models, args.canaries, args.seed, args.shards)
        self.running: list[str | None] = [shard_name(i) for i in range(args.shards_running)] or [
            None
        ]
        self.plans = [p for p in self.fleet_plans if p.shard in self.running]
        self.fleet = Fleet(len(self.plans))
        self.commit = ""  # the tree the operators start from: read as they start
        self.watches: list[Watch] = []
        self.operators: list[Operator] = []

    def wait(
        self, predicate: Callable[[], T], timeout: float, describe: str, interval: float = 0.5
    ) -> T:
        def checked() -> T:
            self.check_running()
            return predicate()

        return wait_for(checked, timeout, describe, interval)

    def check_running(self) -> None:
        for operator in self.operators:
            operator.process.check_running()

    def read(self) -> list[Reading]:
        return [o.scraper.read() for o in self.operators]

    def memory(self) -> list[tuple[float, float]]:
        return [memory_mib(o.process.pid) for o in self.operators]

    def phase_peaks(self, phase: str) -> None:
        """Each operator's peak RSS since the last phase ended, kept as ``phase``'s; the
        next phase's peak starts from the RSS of now."""
        for operator in self.operators:
            operator.peaks[phase] = round(memory_mib(operator.process.pid)[1], 1)
            reset_peak(operator.process.pid)
        peaks = ", ".join(f"{o.peaks[phase]:.0f}" for o in self.operators)
        say(f"peak RSS in the {phase}: {peaks} MiB")

    def start_operators(
        self,
        cluster: LocalControlPlane,
        prometheus: PrometheusServer,
        api: ApiServer,
        again: bool = False,
    ) -> None:
        """One operator per shard; ``again``: after a restart, each under a name (its log,
        its memory capture) of its own."""
        control_plane = {p.name: p.pid for p in cluster.processes}
        # not at the run's start: the backfill takes minutes
        self.commit = self.commit or commit()
        for shard in self.running:
            name = "-".join(
                ["operator", *([shard] if shard else []), *(["again"] if again else [])]
            )
            capture = None
            if self.args.memory_profile == "all" or (
                again and self.args.memory_profile == "restart"
            ):
                capture = self.args.out.with_name(f"memray-{name}.bin")
                capture.parent.mkdir(parents=True, exist_ok=True)
            process, metrics_url = start_operator(
                cluster, self.work, prometheus.url, self.args.operator_source, shard, capture, name
            )
            scraper = Scraper(process.pid, metrics_url, api, control_plane)
            self.operators.append(Operator(shard, process, scraper))

    def measure(self, cluster: LocalControlPlane, prometheus: PrometheusServer) -> Figures:
        args, n = self.args, len(self.plans)
        canaries = sum(p.canary for p in self.plans)
        api = ApiServer(cluster.admin.kubeconfig)
        self.start_operators(cluster, prometheus, api)
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
        self.watches = [
            Watch(
                api,
                f"/apis/{MODELS.group}/{MODELS.version}/namespaces/{NAMESPACE}/models",
                "",
                self.fleet.on_model,
            ),
            Watch(
                api,
                f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
                selector,
                self.fleet.on_deployment,
            ),
            Watch(
                api,
                f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs",
                LABEL_TRAINING,
                self.fleet.on_job,
            ),
        ]
        self.profile_apiserver(api, "apply")
        before = combined(self.read())
        create = creator(args.analysis_interval, self.fleet.on_applied, self.running)
        _in_parallel(create, self.fleet_plans, cluster.admin.kubeconfig)
        create_seconds = time.monotonic() - before.at
        total = args.models
        say(f"created {total} Models and {2 * total} ModelVersions in {create_seconds:.1f} s")
        ready_at = self.wait(self.fleet.all_ready, 300 + 2.0 * n, f"all {n} Models Ready")
        assert ready_at is not None  # wait_for returns a truthy value
        ready = combined(self.read())
        each_ready = spread(self.fleet.ready_latencies())
        stages = {stage: spread(t) for stage, t in self.fleet.apply_stages().items()}
        say(
            f"all Ready {ready_at - before.at:.1f} s after the first create; each Model "
            f"p50 / p99 {each_ready[0]:.1f} / {each_ready[1]:.1f} s after its own; "
            + ", ".join(f"{stage} {t[0]:.1f} / {t[1]:.1f} s" for stage, t in stages.items())
        )
        self.wait(lambda: self.fleet.rolling() >= canaries, 300, f"{canaries} canaries")
        time.sleep(args.settle_seconds)
        self.clear_of_relists()
        self.phase_peaks("apply")
        steady, cycles, shards = self.steady()
        rss_steady = [rss for rss, _ in self.memory()]
        self.phase_peaks("steady")
        inconclusive = self.inconclusive_at_rest(cluster.admin.kubeconfig)
        say(f"steady: {100 * steady.cpu_share:.1f} % of a core, {max(rss_steady):.0f} MiB")
        for shard, rss in zip(shards, rss_steady, strict=True):
            if shard.shard:  # a long run stopped early still leaves each shard's figures
                share = 100 * shard.steady.cpu_share
                say(f"  {shard.shard}: {share:.1f} % of a core, {rss:.0f} MiB")
        model_bytes = stored_bytes(self.models_as_stored(api))
        canaries_rolling = self.fleet.rolling()
        edit = None
        if not args.no_burst:
            self.profile_apiserver(api, "burst")
            edit = self.burst(cluster.admin.kubeconfig)
            say(
                f"every Deployment updated {edit.all_updated_seconds:.1f} s after the first "
                f"edit; each edit -> its Deployment p50 / p99 {edit.latency_p50:.1f} / "
                f"{edit.latency_p99:.1f} s (-> the operator's write "
                f"{edit.to_write[0]:.1f} / {edit.to_write[1]:.1f} s; its watch of the edit "
                f"{edit.to_seen[0]:.1f} / {edit.to_seen[1]:.1f} s)"
            )
            self.phase_peaks("burst")
        breach = self.breaches(cluster.admin.kubeconfig)
        self.phase_peaks("breaches")
        say(
            f"{breach.models} Models in breach, each training once, {breach.training_max:.1f} s "
            "at most after its edit"
        )
        again = self.restart(cluster, prometheus, api)
        self.phase_peaks("restart")
        say(
            f"restarted: leading after {again.lead_seconds:.1f} s, caught up after "
            f"{again.caught_up_seconds:.1f} s, {again.rss_mib:.0f} MiB; {again.jobs} training "
            f"Jobs made again; writes per Model: {again.writes_per_model or 'none'}; "
            f"{again.edits.models} Models edited in the catch-up, each -> its Deployments "
            f"p50 / max {again.edits.latency[0]:.2f} / {again.edits.latency[2]:.2f} s"
        )
        rss_peak = [max(o.peaks.values()) for o in self.operators]
        shard_figures = [
            replace(
                figures,
                rss_steady_mib=round(steady_, 1),
                rss_peak_mib=peak,
                rss_peak_by_phase_mib=o.peaks,
            )
            for figures, steady_, peak, o in zip(
                shards, rss_steady, rss_peak, self.operators, strict=True
            )
        ]
        return Figures(
            models=args.models,
            canaries=canaries,
            seed=args.seed,
            slices=sum(p.slices for p in self.plans),
            series=series_count(self.plans),
            date=datetime.now(UTC).strftime("%Y-%m-%d"),
            commit=self.commit,
            create_seconds=round(create_seconds, 1),
            ready_seconds=round(ready_at - before.at, 3),  # as each_ready: comparable
            each_ready=each_ready,
            apply_stages=stages,
            canaries_rolling=canaries_rolling,
            rss_steady_mib=round(max(rss_steady), 1),
            rss_peak_mib=round(max(rss_peak), 1),
            rss_peak_by_phase_mib={
                phase: max(o.peaks[phase] for o in self.operators)
                for phase in self.operators[0].peaks
            },
            apply=window(before, ready, n),
            steady=steady,
            steady_cpu_per_cycle=cycles,
            burst=edit,
            breach=breach,
            restart=again,
            analysis_seconds=args.analysis_interval,
            shards=shard_figures if args.shards else [],
            model_bytes=model_bytes,
            models_running=n,
            inconclusive_at_rest=inconclusive,
        )

    def clear_of_relists(self) -> None:
        """Wait, if need be, for a steady window that no operator's full relist of its
        watch caches falls in (each relists every RELIST_PERIODS resync periods from when
        it began to lead): the window measures the work at rest."""
        now = time.monotonic()
        start = clear_of_relists(
            now,
            [o.leading_since for o in self.operators],
            RELIST_PERIODS * RESYNC_SECONDS,
            self.args.steady_seconds,
            RESYNC_SECONDS,  # for a relist to end
        )
        if start > now:
            say(f"the steady window waits {start - now:.0f} s, past an operator's relist")
            time.sleep(start - now)

    def profile_apiserver(self, api: ApiServer, phase: str) -> None:
        """With --apiserver-profile: the API server's CPU profile of the phase's first
        seconds, fetched in the background and written beside --out."""
        seconds = self.args.apiserver_profile
        if not seconds:
            return
        out = self.args.out.with_name(f"apiserver-{phase}.pprof")

        def fetch() -> None:
            out.write_bytes(api.get_bytes(f"/debug/pprof/profile?seconds={seconds:g}", seconds))

        threading.Thread(target=fetch, name=f"profile-{phase}", daemon=True).start()

    def profile_cpu(self, seconds: float) -> list[subprocess.Popen[bytes]]:
        """py-spy sampling each operator's stacks for ``seconds``, 100 times a second, into
        collapsed stacks beside --out. Only the thread holding the GIL is sampled: where
        the Python CPU goes (a thread waiting for a lock or for the GIL is not working).
        Non-blocking: the operator is never paused, so the window's CPU figures stay its
        own (a rare sample may mix two stacks)."""
        profilers = []
        for operator in self.operators:
            out = self.args.out.with_name(f"pyspy-{operator.shard or 'operator'}.txt")
            out.parent.mkdir(parents=True, exist_ok=True)
            argv = [str(Path(sys.executable).with_name("py-spy")), "record", "--format=raw"]
            argv += [f"--pid={operator.process.pid}", f"--duration={math.ceil(seconds)}"]
            argv += [f"--output={out}", "--rate=100", "--nonblocking", "--gil"]
            with (self.work / "logs" / f"{out.stem}.log").open("wb") as log:
                profilers.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        return profilers

    @staticmethod
    def models_as_stored(api: ApiServer) -> list[Obj]:
        """A sample of the Models as the API server holds them: the first 500 by name."""
        path = f"/apis/{MODELS.group}/{MODELS.version}/namespaces/{NAMESPACE}/models?limit=500"
        items: list[Obj] = api.get_json(path)["items"]
        return items

    def steady(self) -> tuple[Window, list[float], list[ShardFigures]]:
        """Nothing changes: a reading at every resync period of the window; the whole
        window, its cycles' CPU and each shard's window. A CPU profile spans the window
        from just after the first reading to just before the last, so it holds exactly
        the scrapes of the readings between (one fewer than the periods)."""
        first = self.read()
        readings: list[Reading] = [combined(first)]
        count = max(1, round(self.args.steady_seconds / RESYNC_SECONDS))
        period = self.args.steady_seconds / count
        # Stopped before the last reading; the duration only bounds a profiler left running.
        bound = self.args.steady_seconds + 60
        profilers = self.profile_cpu(bound) if self.args.cpu_profile else []
        for n in range(count):
            time.sleep(max(0.0, readings[0].at + period * len(readings) - time.monotonic()))
            self.check_running()
            if n == count - 1:
                for profiler in profilers:
                    profiler.send_signal(signal.SIGINT)  # py-spy writes what it sampled
                    profiler.wait(timeout=60)
            last = self.read()
            readings.append(combined(last))
        cycles = [
            round((b.cpu_seconds - a.cpu_seconds) / (b.at - a.at), 4)
            for a, b in itertools.pairwise(readings)
        ]
        shards = []
        for operator, a, b in zip(self.operators, first, last, strict=True):
            models = sum(1 for p in self.plans if p.shard == operator.shard)
            shards.append(ShardFigures(operator.shard or "", models, window(a, b, models)))
        return window(readings[0], readings[-1], len(self.plans)), cycles, shards

    def inconclusive_at_rest(self, kubeconfig: Path) -> int:
        """How many Models are not evaluated conclusively at rest (Healthy Unknown): each
        has series to answer its queries, so any is a finding, told here with a few's
        conditions, not an hour later when the breach phase waits for one of them."""
        names = self.fleet.inconclusive([p.name for p in self.plans])
        if names:
            say(
                f"{len(names)} of {len(self.plans)} Models are not evaluated conclusively at "
                "rest (Healthy Unknown or missing); the first:"
            )
            say("\n".join(told(names[:5], conditions_reader(kubeconfig))))
        return len(names)

    def edit_models(
        self, plans: list[ModelPlan], kubeconfig: Path
    ) -> tuple[dict[str, str], dict[str, tuple[float, float]]]:
        """The plans' Models' specs edited by CLIENTS threads: their Deployments expected
        to show the edit (Deployment -> Model), and when each edit was sent (monotonic,
        wall)."""
        token = str(int(time.time()))
        names = {p.name for p in plans}
        expected = {d: m for d, m in self.fleet.expect_edit(token).items() if m in names}
        edits: dict[str, tuple[float, float]] = {}
        patch = edit_patch(token)

        def send(kube: Kube, plan: ModelPlan) -> None:
            edits[plan.name] = (time.monotonic(), time.time())
            kube.merge_patch(MODELS, NAMESPACE, plan.name, patch)

        _in_parallel(send, plans, kubeconfig)
        return expected, edits

    def deployments_updated(self, expected: dict[str, str]) -> bool:
        arrivals = self.fleet.arrivals()
        return all(d in arrivals for d in expected)

    def burst(self, kubeconfig: Path) -> Burst:
        """Every Model's spec edited; each Deployment timed to its edit."""
        before = combined(self.read())
        expected, edits = self.edit_models(self.plans, kubeconfig)
        sent = time.monotonic() - before.at
        self.wait(
            lambda: self.deployments_updated(expected),
            120 + 1.0 * len(expected),
            f"{len(expected)} Deployments updated",
        )
        after = combined(self.read())
        return burst(
            expected,
            edits,
            self.fleet.arrivals(),
            self.fleet.writes(),
            self.fleet.edits_seen(),
            sent,
            window(before, after, len(edits)),
        )

    def breaches(self, kubeconfig: Path) -> BreachBurst:
        """A share of the retraining Models breach at once: each must be declared in breach
        and start exactly one training. Another resync period is watched after the last
        one started, for a duplicate."""
        chosen = breaching(self.plans, self.args.breaching, self.args.seed)
        self.fleet.expect_breaches()
        edits: dict[str, float] = {}
        patch = breach_patch()

        def edit(kube: Kube, plan: ModelPlan) -> None:
            edits[plan.name] = time.monotonic()
            kube.merge_patch(MODELS, NAMESPACE, plan.name, patch)

        before = combined(self.read())
        _in_parallel(edit, chosen, kubeconfig)

        def trained() -> bool:
            breached, jobs = self.fleet.breaches()
            return all(p.name in breached and p.name in jobs for p in chosen)

        timeout = 120 + 0.5 * len(chosen)
        try:
            self.wait(trained, timeout, f"{len(chosen)} Models in breach, training")
        except AssertionError as timed_out:
            breached, jobs = self.fleet.breaches()
            conditions_of = conditions_reader(kubeconfig)
            late = late_breaches([p.name for p in chosen], breached, jobs, conditions_of)
            say(late)
            raise AssertionError(f"{timed_out}\n{late}") from None
        time.sleep(10.0 if self.args.short else RESYNC_SECONDS)
        after = combined(self.read())
        breached, jobs = self.fleet.breaches()
        return breach_burst(edits, breached, jobs, window(before, after, len(edits)))

    def restart(
        self, cluster: LocalControlPlane, prometheus: PrometheusServer, api: ApiServer
    ) -> Restart:
        """Every operator killed at once (SIGKILL: a crash; its Lease is left to expire)
        and started again; timed until each leads, then until they have reconciled as many
        times as there are Models, then watched a while longer (a resync period) for a
        training started twice. Once each has begun its catch-up, a few Models are edited,
        as a user would meanwhile: each edit timed to its Deployments, against the fleet
        listed ahead of it."""
        n = len(self.plans)
        _, jobs = self.fleet.breaches()
        jobs_before = sum(len(j) for j in jobs.values())
        before = combined(self.read())
        killed = time.monotonic()
        old = self.operators
        for operator in old:
            operator.process.kill()
        self.operators = []
        self.start_operators(cluster, prometheus, api, again=True)
        led = time.monotonic()
        for new, gone in zip(self.operators, old, strict=True):
            new.peaks = dict(gone.peaks)  # the phases before, then the restart's
        self.wait(
            lambda: all(o.scraper.reconciles() > 0 for o in self.operators),
            120,
            "every new operator's first reconcile",
            CATCH_UP_POLL_SECONDS,
        )
        k = max(1, min(CATCH_UP_EDITS, n // 10))
        expected, edits = self.edit_models(
            self.plans[:: max(1, n // k)][:k], cluster.admin.kubeconfig
        )
        self.wait(
            lambda: sum(o.scraper.reconciles() for o in self.operators) >= n,
            120 + 0.5 * n,
            "every Model again",
            CATCH_UP_POLL_SECONDS,
        )
        caught_up = time.monotonic()
        self.wait(
            lambda: self.deployments_updated(expected),
            120,
            f"the {len(expected)} Deployments of the {len(edits)} Models edited in the catch-up",
        )
        edited = catch_up_edits(killed, expected, edits, self.fleet.arrivals())
        time.sleep(10.0 if self.args.short else RESYNC_SECONDS)
        after = combined(self.read())
        rss = max(rss for rss, _ in self.memory())
        _, jobs = self.fleet.breaches()
        made = sum(len(j) for j in jobs.values()) - jobs_before
        win = window(restarted(before, killed), after, n)
        return restart(killed, led, caught_up, made, after.api_requests, n, rss, win, edited)

    def stop(self) -> None:
        for watch in self.watches:
            watch.stop()
        for operator in self.operators:
            operator.process.stop()


def _finite(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # SIGTERM unwinds like Ctrl-C: the control plane and the operator are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="modelloop-bench-scale-"))
    shards = f", {args.shards} shards" if args.shards else ""
    if args.shards_running < args.shards:
        shards += f" ({args.shards_running} running)"
    say(f"{args.models} Models ({args.canaries} rolling a canary{shards}), work directory {work}")
    run = Run(args, work)
    cluster = LocalControlPlane(work / "cluster", audit=args.audit).start()
    prometheus = None
    try:
        kube = cluster.admin.kube()
        install_crds(kube)
        # The chart's RBAC, with the shards' Leases when sharded.
        names = ",".join(shard_name(i) for i in range(args.shards))
        values = ["--set", f"shards={{{names}}}"] if args.shards else []
        cluster.operator = operator_identity(cluster.admin, work, *values)
        kube.create(
            NAMESPACES,
            None,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        )
        for manifest in templates():
            kube.create(TEMPLATES, NAMESPACE, manifest)
        # The series reach past the run's longest wait: creation, Ready, burst.
        horizon = int(900 + args.steady_seconds + args.settle_seconds + 3 * args.models)
        prometheus = backfill(work, run.plans, horizon)
        figures = run.measure(cluster, prometheus)
    finally:
        run.stop()
        if prometheus is not None:
            prometheus.stop()
        cluster.stop()
    figures = replace(figures, run_seconds=round(time.monotonic() - started))
    report = asdict(figures)
    if not _finite(report):
        raise AssertionError(f"a figure is not finite: {report}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(figures))
    say(f"figures in {args.out} ({figures.run_seconds} s in all)")
    if cluster.audit_log is not None:
        say(f"the API server's audit log: {cluster.audit_log} (python -m bench.scale.audit)")
    if not (args.keep or args.audit):
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
