"""The figures of a scale run: each window's, from two readings (pure), and the table."""

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .measure import Reading

RESYNC_SECONDS = 30.0  # the operator's resync and the Models' evaluation interval


@dataclass(frozen=True)
class Window:
    """What the operator and the API server did between two readings."""

    seconds: float
    cpu_seconds: float
    cpu_share: float  # of one core
    cpu_ms_per_model_per_resync: float
    harness_cpu_share: float  # what the harness itself spent (it shares the machine)
    apiserver_cpu_share: float
    control_plane_cpu_share: float  # etcd, the API server, the controllers, kwok
    load_average: float  # the machine's, 1 minute, at the window's end
    api_requests: float  # Leases aside: the leader election's cost does not grow with N
    api_per_model: float
    api_per_model_per_resync: float
    api_reads_per_model_per_resync: float  # get and list
    api_by_kind_per_model_per_resync: dict[str, float]  # "verb resource"
    lease_requests_per_second: float
    watch_events: float
    watch_events_by_resource: dict[str, float]
    prometheus_requests_per_cycle: float
    status_patches_per_cycle: float
    evaluation_cycle_seconds: float  # mean wall time of one evaluation cycle
    reconciles: float
    reconcile_mean_seconds: float
    # From the change that asked for a reconcile to its start, by lane (urgent, normal):
    # the mean, and the bound of the histogram bucket holding the p99 (the last bound:
    # that or more).
    queue_wait_mean_seconds: dict[str, float]
    queue_wait_p99_at_most: dict[str, float]
    # How late the Models' watch events reached the operator after their writes: the
    # bound of the bucket holding the p99 (modelloop_watch_delay_seconds)
    model_event_delay_p99_at_most: float
    apiserver_requests_per_second: float
    apiserver_by_verb_per_second: dict[str, float]
    # The API server's mean answer time (ms) of its most answered kinds of request in the
    # window, by "VERB resource[/subresource]", most answered first.
    apiserver_mean_ms: dict[str, float]


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Counter increases by key, the ones that moved, largest first."""
    moved = {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}
    return dict(sorted(moved.items(), key=lambda kv: -kv[1]))


def _of_the_fleet(requests: dict[str, float]) -> dict[str, float]:
    """API requests by "verb resource" but the Lease's: the election's, not the fleet's."""
    return {k: v for k, v in requests.items() if not k.endswith(" leases")}


LANES = ("urgent", "normal")  # the operator's work queue's


def _lane(buckets: dict[str, float], lane: str) -> dict[str, float]:
    """One lane's (or resource's) cumulative buckets, by "le", of buckets keyed
    "lane le"."""
    return {k.split(" ")[1]: v for k, v in buckets.items() if k.split(" ")[0] == lane}


def _mean_wait(before: Reading, after: Reading, lane: str) -> float:
    waits = _lane(after.queue_waits, lane).get("+Inf", 0.0)
    waits -= _lane(before.queue_waits, lane).get("+Inf", 0.0)
    seconds = after.queue_wait_seconds.get(lane, 0.0) - before.queue_wait_seconds.get(lane, 0.0)
    return round(seconds / max(1.0, waits), 3)


def bucket_quantile(before: dict[str, float], after: dict[str, float], q: float) -> float:
    """The upper bound of the histogram bucket holding the ``q`` quantile of what was
    observed between two readings of its cumulative buckets (by "le"); 0 when nothing;
    the last finite bound when it is past it (a report's figures are finite)."""
    counts = sorted((float(le), after[le] - before.get(le, 0.0)) for le in after)
    total = counts[-1][1] if counts else 0.0
    if total <= 0:
        return 0.0
    bound = next(le for le, n in counts if n >= q * total)
    return bound if math.isfinite(bound) else max(le for le, _ in counts if math.isfinite(le))


def window(before: Reading, after: Reading, models: int) -> Window:
    seconds = after.at - before.at
    cycles = seconds / RESYNC_SECONDS
    cpu = after.cpu_seconds - before.cpu_seconds
    requests = _diff(after.api_requests, before.api_requests)
    api = _of_the_fleet(requests)
    leases = sum(requests.values()) - sum(api.values())
    reads = sum(v for k, v in api.items() if k.split(" ")[0] in ("get", "list"))
    watch = _diff(after.watch_events, before.watch_events)
    apiserver = _diff(after.apiserver_requests, before.apiserver_requests)
    total = sum(api.values())
    reconciles = after.reconciles - before.reconciles
    return Window(
        seconds=round(seconds, 1),
        cpu_seconds=round(cpu, 2),
        cpu_share=round(cpu / seconds, 4),
        cpu_ms_per_model_per_resync=round(1000 * cpu / models / cycles, 2),
        load_average=round(after.load_average, 2),
        harness_cpu_share=round(
            (after.harness_cpu_seconds - before.harness_cpu_seconds) / seconds, 4
        ),
        apiserver_cpu_share=round(
            (after.apiserver_cpu_seconds - before.apiserver_cpu_seconds) / seconds, 4
        ),
        control_plane_cpu_share=round(
            (after.control_plane_cpu_seconds - before.control_plane_cpu_seconds) / seconds, 4
        ),
        api_requests=total,
        api_per_model=round(total / models, 2),
        api_per_model_per_resync=round(total / models / cycles, 2),
        api_reads_per_model_per_resync=round(reads / models / cycles, 2),
        api_by_kind_per_model_per_resync={k: round(v / models / cycles, 3) for k, v in api.items()},
        lease_requests_per_second=round(leases / seconds, 2),
        watch_events=sum(watch.values()),
        watch_events_by_resource=watch,
        prometheus_requests_per_cycle=round(
            (after.prometheus_requests - before.prometheus_requests) / cycles, 1
        ),
        status_patches_per_cycle=round((after.status_patches - before.status_patches) / cycles, 1),
        evaluation_cycle_seconds=round(
            (after.evaluation_seconds - before.evaluation_seconds)
            / max(1.0, after.evaluation_cycles - before.evaluation_cycles),
            3,
        ),
        reconciles=reconciles,
        reconcile_mean_seconds=round(
            (after.reconcile_seconds - before.reconcile_seconds) / max(1.0, reconciles), 4
        ),
        queue_wait_mean_seconds={lane: _mean_wait(before, after, lane) for lane in LANES},
        queue_wait_p99_at_most={
            lane: bucket_quantile(
                _lane(before.queue_waits, lane), _lane(after.queue_waits, lane), 0.99
            )
            for lane in LANES
        },
        model_event_delay_p99_at_most=bucket_quantile(
            _lane(before.watch_delays, "models"), _lane(after.watch_delays, "models"), 0.99
        ),
        apiserver_requests_per_second=round(sum(apiserver.values()) / seconds, 1),
        apiserver_by_verb_per_second={k: round(v / seconds, 2) for k, v in apiserver.items()},
        apiserver_mean_ms=_answer_times(before, after),
    )


APISERVER_KINDS = 8  # the kinds of request whose answer time a window reports


def _answer_times(before: Reading, after: Reading) -> dict[str, float]:
    return mean_answer_ms(
        _diff(after.apiserver_seconds, before.apiserver_seconds),
        _diff(after.apiserver_answers, before.apiserver_answers),
    )


def mean_answer_ms(seconds: dict[str, float], answers: dict[str, float]) -> dict[str, float]:
    """The mean answer time of the APISERVER_KINDS most answered kinds (``answers``:
    most first), from the time summed over each kind's answers."""
    return {
        kind: round(1000 * seconds.get(kind, 0.0) / count, 1)
        for kind, count in list(answers.items())[:APISERVER_KINDS]
    }


def quantile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def stored_bytes(objects: list[dict[str, Any]]) -> dict[str, float]:
    """The mean size of the objects as the API server holds them (compact JSON, as etcd
    stores a custom resource), whole and the parts every write decodes, merges and stores
    again: ``metadata.managedFields`` and ``status``."""

    def size(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":")))

    parts = {
        "object": [size(o) for o in objects],
        "managedFields": [size(o["metadata"].get("managedFields") or []) for o in objects],
        "status": [size(o.get("status") or {}) for o in objects],
    }
    return {part: round(sum(sizes) / max(len(sizes), 1), 1) for part, sizes in parts.items()}


def spread(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max, to the millisecond (zeros for none)."""
    if not values:
        return 0.0, 0.0, 0.0
    p50, p99, most = quantile(values, 0.5), quantile(values, 0.99), max(values)
    return round(p50, 3), round(p99, 3), round(most, 3)


@dataclass(frozen=True)
class Burst:
    """Every Model's spec edited at once: how fast the operator carried it to the
    Deployments (latency: from a Model's edit to its Deployment showing it)."""

    deployments: int
    edit_seconds: float  # to send every edit
    all_updated_seconds: float  # first edit -> last Deployment updated
    latency_p50: float
    latency_p99: float
    latency_max: float
    # The latency in two: edit sent -> the operator's write (as the API server stamped
    # it, to the second), and that write -> the harness's watch: p50, p99, max each.
    to_write: tuple[float, float, float]
    write_to_watch: tuple[float, float, float]
    # Edit sent -> the harness's watch of Models showed it: the API server's part of
    # to_write, which the operator's own watch of Models waits for alike.
    to_seen: tuple[float, float, float]
    window: Window


def burst(
    expected: dict[str, str],
    edits: dict[str, tuple[float, float]],
    arrivals: dict[str, float],
    writes: tuple[dict[str, float], dict[str, float]],
    seen: dict[str, float],
    edit_seconds: float,
    win: Window,
) -> Burst:
    """``expected``: Deployment -> its Model; ``edits``: Model -> when its edit was sent
    (monotonic, wall); ``arrivals``: Deployment -> when it showed the edit (monotonic, all
    of ``expected``); ``writes``: Deployment -> the operator's write (wall), and its
    delivery to the harness (seconds), for those whose write time was read; ``seen``:
    Model -> when the harness's watch showed its edit (monotonic)."""
    p50, p99, most = spread([arrivals[d] - edits[m][0] for d, m in expected.items()])
    written, delivered = writes
    return Burst(
        deployments=len(expected),
        edit_seconds=round(edit_seconds, 2),
        all_updated_seconds=round(max(arrivals.values()) - min(e[0] for e in edits.values()), 3),
        latency_p50=p50,
        latency_p99=p99,
        latency_max=most,
        to_write=spread([written[d] - edits[m][1] for d, m in expected.items() if d in written]),
        write_to_watch=spread(list(delivered.values())),
        to_seen=spread([at - edits[m][0] for m, at in seen.items() if m in edits]),
        window=win,
    )


@dataclass(frozen=True)
class BreachBurst:
    """A share of the Models breaching at once (their objectives raised above their
    values, as if their data had drifted): how fast each was declared in breach and its
    training started, from its edit; and that each started exactly one."""

    models: int
    breach_p50: float  # edit -> the Model's Healthy condition False, reason Breach
    breach_p99: float
    breach_max: float
    training_p50: float  # edit -> its training Job seen
    training_p99: float
    training_max: float
    jobs: int  # training Jobs made in the phase, by any Model
    duplicated: int  # Models with more than one
    unasked: int  # Jobs of Models that did not breach
    window: Window


def breach_burst(
    edits: dict[str, float],
    breached: dict[str, float],
    jobs: dict[str, dict[str, float]],
    win: Window,
) -> BreachBurst:
    """``edits``: Model -> when its edit was sent (each of them breached and trained);
    ``breached``: Model -> when seen in breach; ``jobs``: Model -> its Jobs -> when seen."""
    breach = spread([breached[m] - sent for m, sent in edits.items()])
    training = spread([min(jobs[m].values()) - sent for m, sent in edits.items()])
    return BreachBurst(
        models=len(edits),
        breach_p50=breach[0],
        breach_p99=breach[1],
        breach_max=breach[2],
        training_p50=training[0],
        training_p99=training[1],
        training_max=training[2],
        jobs=sum(len(j) for j in jobs.values()),
        duplicated=sum(1 for j in jobs.values() if len(j) > 1),
        unasked=sum(len(j) for m, j in jobs.items() if m not in edits),
        window=win,
    )


@dataclass(frozen=True)
class CatchUpEdits:
    """A few Models edited while restarted operators catch up with the fleet: whether a
    user's edit waits behind every Model the new operators listed (seconds from the
    kill, and from each edit to its Deployments)."""

    models: int
    deployments: int  # theirs: each updated once, the restart's only Deployment writes
    sent_seconds: float  # the kill -> the last edit sent
    latency: tuple[float, float, float]  # an edit -> the last of its Deployments: p50, p99, max


def catch_up_edits(
    killed: float,
    expected: dict[str, str],
    edits: dict[str, tuple[float, float]],
    arrivals: dict[str, float],
) -> CatchUpEdits:
    """``expected``: Deployment -> its Model; ``edits``: Model -> when its edit was sent
    (monotonic, wall); ``arrivals``: Deployment -> when it showed the edit (monotonic)."""
    done: dict[str, float] = {}
    for deployment, model in expected.items():
        done[model] = max(done.get(model, 0.0), arrivals[deployment])
    return CatchUpEdits(
        models=len(edits),
        deployments=len(expected),
        sent_seconds=round(max(e[0] for e in edits.values()) - killed, 1),
        latency=spread([at - edits[m][0] for m, at in done.items()]),
    )


@dataclass(frozen=True)
class Restart:
    """Every operator killed at once (SIGKILL, a crash: its Lease is left to expire) and
    started again, with nothing changed while it was down but the trainings running:
    how long until it led and had reconciled as many times as it has Models, and what
    it wrote meanwhile. A write is one a restart should not need, but those of the few
    Models edited in the catch-up (``edits``: their Deployments, an Event each); a Job
    is a training started twice (the bench's training pods never end)."""

    lead_seconds: float  # the kill -> every new operator leads
    caught_up_seconds: float  # the kill -> as many reconciles as Models
    jobs: int  # training Jobs made after the kill
    writes_per_model: dict[str, float]  # "verb resource": the new operators' writes
    rss_mib: float  # the largest new operator's at the end, against its steady RSS before
    window: Window  # the kill -> a while after catching up; the new operators' counters
    edits: CatchUpEdits


WRITES = ("create", "update", "patch", "apply", "delete")


def restart(
    killed: float,
    led: float,
    caught_up: float,
    jobs: int,
    requests: dict[str, float],
    models: int,
    rss_mib: float,
    win: Window,
    edits: CatchUpEdits,
) -> Restart:
    """``requests``: the new operators' API requests by "verb resource" (from their
    start)."""
    writes = {
        k: round(v / models, 3)
        for k, v in _of_the_fleet(requests).items()
        if k.split(" ")[0] in WRITES
    }
    return Restart(
        lead_seconds=round(led - killed, 1),
        caught_up_seconds=round(caught_up - killed, 1),
        jobs=jobs,
        writes_per_model=writes,
        rss_mib=round(rss_mib, 1),
        window=win,
        edits=edits,
    )


@dataclass(frozen=True)
class ShardFigures:
    """One shard's operator: its Models, its steady window, its memory."""

    shard: str
    models: int
    steady: Window
    rss_steady_mib: float = 0.0
    rss_peak_mib: float = 0.0
    rss_peak_by_phase_mib: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Figures:
    models: int
    canaries: int
    seed: int
    slices: int
    series: int
    date: str
    commit: str
    create_seconds: float  # to send every object
    ready_seconds: float  # first create -> every Model Ready
    each_ready: tuple[float, float, float]  # a Model's apply -> its Ready: p50, p99, max
    canaries_rolling: int  # Models with a canary in flight during the steady window
    rss_steady_mib: float
    rss_peak_mib: float
    rss_peak_by_phase_mib: dict[str, float]  # apply, steady, burst, breaches: the largest
    apply: Window
    steady: Window
    steady_cpu_per_cycle: list[float]  # share of a core in each 30 s of the steady window
    burst: Burst | None  # None: not run (--no-burst)
    breach: BreachBurst
    restart: Restart
    # The Models every phase acts on and measures: the running shards' (--shards-running),
    # else all of them
    models_running: int
    analysis_seconds: float = 30.0  # a canary's analysis interval
    shards: list[ShardFigures] = field(default_factory=list)  # with --shards: each one's
    # a Model at rest as the API server holds it, mean bytes (stored_bytes)
    model_bytes: dict[str, float] = field(default_factory=dict)
    # Where a Model's apply -> Ready went (Fleet.apply_stages): p50, p99, max of each stage
    apply_stages: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    run_seconds: float = field(default=0.0)
    # Models whose Healthy condition was Unknown or missing at the end of the steady window
    inconclusive_at_rest: int = 0


def _window_row(w: Window) -> str:
    return (
        f"{100 * w.cpu_share:.1f} % ({100 * w.apiserver_cpu_share:.0f} %, "
        f"{100 * w.control_plane_cpu_share:.0f} %) over {w.seconds:g} s, {w.api_per_model:g}; "
        f"load average {w.load_average:.2f}; {w.reconciles:g} reconciles of "
        f"{w.reconcile_mean_seconds:g} s; waited, urgent / normal: "
        + " / ".join(
            f"{w.queue_wait_mean_seconds[lane]:g} s (p99 <= {w.queue_wait_p99_at_most[lane]:g} s)"
            for lane in LANES
        )
        + f"; Model events p99 <= {w.model_event_delay_p99_at_most:g} s after their write"
    )


def _answer_row(w: Window) -> str:
    return ", ".join(f"{kind} {ms:g}" for kind, ms in w.apiserver_mean_ms.items()) or "-"


def _phases(peaks: dict[str, float]) -> str:
    return ", ".join(f"{phase} {mib:.0f}" for phase, mib in peaks.items())


def _burst_rows(b: Burst | None) -> list[tuple[str, str]]:
    if b is None:
        return [("spec edit of every Model", "not run (--no-burst)")]
    return [
        (
            "spec edit of every Model -> all Deployments",
            f"{b.all_updated_seconds:.1f} s ({b.deployments} Deployments, edits sent in "
            f"{b.edit_seconds:.1f} s)",
        ),
        (
            "edit -> Deployment p50 / p99 / max",
            f"{b.latency_p50:.2f} / {b.latency_p99:.2f} / {b.latency_max:.2f} s",
        ),
        (
            "  edit -> the API server's watch event of it (the operator waits for it too)",
            " / ".join(f"{v:.2f}" for v in b.to_seen) + " s",
        ),
        (
            "  edit -> the operator's write; that write -> seen (+-0.5 s)",
            " / ".join(f"{v:.1f}" for v in b.to_write)
            + " s; "
            + " / ".join(f"{v:.1f}" for v in b.write_to_watch)
            + " s",
        ),
    ]


def _models(f: Figures) -> str:
    rolling = f"({f.canaries_rolling} of {f.canaries})"
    if f.models_running < f.models:
        return f"{f.models}, {f.models_running} of them in the running shards {rolling}"
    return f"{f.models} {rolling}"


def table(f: Figures) -> str:
    s = f.steady
    api = ", ".join(f"{k} {v:g}" for k, v in s.api_by_kind_per_model_per_resync.items()) or "-"
    apiserver = ", ".join(f"{k} {v:g}" for k, v in s.apiserver_by_verb_per_second.items())
    watch = ", ".join(f"{k} {v:g}" for k, v in s.watch_events_by_resource.items()) or "-"
    cycles = " ".join(f"{100 * c:.1f}" for c in f.steady_cpu_per_cycle)
    windows = "CPU (API server, control plane), API requests per Model, reconciles"
    rows = [
        ("Models (canaries rolling)", _models(f)),
        (
            "apply -> all Ready",
            f"{f.ready_seconds:.1f} s (objects sent in {f.create_seconds:.1f} s)",
        ),
        (
            "  a Model's apply -> its Ready p50 / p99 / max",
            " / ".join(f"{v:.1f}" for v in f.each_ready) + " s",
        ),
        (
            "  -> its Deployment; -> available; -> Ready: p50 / p99 each",
            "; ".join(f"{v[0]:.1f} / {v[1]:.1f} s" for v in f.apply_stages.values()) or "-",
        ),
        (
            "steady CPU, share of a core",
            f"{100 * s.cpu_share:.1f} % (per 30 s: {cycles}; {s.cpu_ms_per_model_per_resync:g} ms"
            f" per Model per resync; harness {100 * s.harness_cpu_share:.1f} %)",
        ),
        (
            "RSS steady / peak" + (" (the largest shard's)" if f.shards else ""),
            f"{f.rss_steady_mib:.0f} / {f.rss_peak_mib:.0f} MiB (peak by phase: "
            + _phases(f.rss_peak_by_phase_mib)
            + ")",
        ),
        (
            "API requests per Model per resync",
            f"{s.api_per_model_per_resync:g}, reads {s.api_reads_per_model_per_resync:g} ({api}; "
            f"Lease {s.lease_requests_per_second:g}/s)",
        ),
        ("watch events in steady window", f"{s.watch_events:g} ({watch})"),
        (
            "a Model at rest as stored: bytes, of them managedFields, status",
            ", ".join(f"{v:.0f}" for v in f.model_bytes.values()) or "-",
        ),
        ("Models not evaluated conclusively at rest", f"{f.inconclusive_at_rest}"),
        ("Prometheus requests per cycle", f"{s.prometheus_requests_per_cycle:g}"),
        (
            "evaluation: cycle wall time, status patches per cycle",
            f"{s.evaluation_cycle_seconds:g} s, {s.status_patches_per_cycle:g}",
        ),
        ("API server requests/s (steady)", f"{s.apiserver_requests_per_second:g} ({apiserver})"),
        *_burst_rows(f.burst),
        (
            f"{f.breach.models} Models breaching: edit -> Breach p50 / p99 / max",
            f"{f.breach.breach_p50:.2f} / {f.breach.breach_p99:.2f} / {f.breach.breach_max:.2f} s",
        ),
        (
            "  -> training Job p50 / p99 / max; Jobs",
            f"{f.breach.training_p50:.2f} / {f.breach.training_p99:.2f} / "
            f"{f.breach.training_max:.2f} s; {f.breach.jobs} (Models with more than one: "
            f"{f.breach.duplicated}; of Models not breaching: {f.breach.unasked})",
        ),
        (
            "restart, every operator killed: -> leading; -> as many reconciles as Models; RSS",
            f"{f.restart.lead_seconds:.1f} s; {f.restart.caught_up_seconds:.1f} s; "
            f"{f.restart.rss_mib:.0f} MiB after",
        ),
        (
            "  Models edited in the catch-up (sent by): each -> its Deployments p50 / max",
            f"{f.restart.edits.models} ({f.restart.edits.sent_seconds:.1f} s): "
            f"{f.restart.edits.latency[0]:.2f} / {f.restart.edits.latency[2]:.2f} s",
        ),
        (
            "  its writes per Model; training Jobs made again",
            (", ".join(f"{k} {v:g}" for k, v in f.restart.writes_per_model.items()) or "none")
            + f"; {f.restart.jobs}",
        ),
        (f"apply: {windows}", _window_row(f.apply)),
        ("apply: the API server's mean answer, ms", _answer_row(f.apply)),
        (f"steady: {windows}", _window_row(s)),
        *([(f"burst: {windows}", _window_row(f.burst.window))] if f.burst else []),
        (f"breaches: {windows}", _window_row(f.breach.window)),
        (f"restart: {windows}", _window_row(f.restart.window)),
    ]
    for shard in f.shards:
        w = shard.steady
        rows.append(
            (
                f"shard {shard.shard}: Models, steady CPU, RSS, reads",
                f"{shard.models}, {100 * w.cpu_share:.1f} % ({w.cpu_ms_per_model_per_resync:g} "
                f"ms per Model per resync), {shard.rss_steady_mib:.0f} / "
                f"{shard.rss_peak_mib:.0f} MiB ({_phases(shard.rss_peak_by_phase_mib)}), "
                f"{w.api_reads_per_model_per_resync:g} per Model "
                "per resync",
            )
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
