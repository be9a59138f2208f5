"""``kubectl modelloop`` (the console script ``kubectl-modelloop``).

Reads Models, ModelVersions and Events with the user's kubeconfig and steers
rollouts through the same fields and annotations a GitOps repository would:
``spec.paused``, ``spec.pinnedVersion``, ``modelloop.dev/approve``,
``modelloop.dev/abort`` and ``modelloop.dev/retrain``. ``lint`` checks manifests
offline, without a cluster.
"""

import argparse
import os
import sys
import time
from typing import Any

from kubernetes import config

from ..api.resources import MODEL_VERSIONS, MODELS
from ..api.vocabulary import ANNOTATION_ABORT, ANNOTATION_APPROVE, ANNOTATION_RETRAIN
from ..kube.rest import EVENTS, Kube, KubeError
from . import views

Obj = dict[str, Any]


class PluginError(Exception):
    """A problem the user can act on; printed without a traceback."""


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
        try:
            self.kube = Kube.from_kubeconfig(kubeconfig) if kubeconfig else Kube.from_environment()
        except (config.ConfigException, OSError) as error:
            raise PluginError(f"cannot load a kubeconfig: {error}") from None
        self.namespace = args.namespace or _context_namespace(kubeconfig)
        self.tty = sys.stdout.isatty()

    def call(self, what: str, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except KubeError as error:
            if error.status == 403:
                raise PluginError(f"not allowed to {what}: {error.message}") from None
            raise PluginError(f"could not {what}: {error}") from None

    def model(self, name: str) -> Obj:
        found = self.call(f"read model {name}", self.kube.get, MODELS, self.namespace, name)
        if found is None:
            raise PluginError(f'model "{name}" not found in namespace "{self.namespace}"')
        return dict(found)

    def models(self, name: str | None) -> list[Obj]:
        if name:
            return [self.model(name)]
        listed = self.call("list models", self.kube.list, MODELS, self.namespace)
        return sorted(listed, key=lambda m: m["metadata"]["name"])

    def versions(self, model: str) -> list[Obj]:
        listed = self.call("list model versions", self.kube.list, MODEL_VERSIONS, self.namespace)
        return [v for v in listed if (v.get("spec") or {}).get("model") == model]

    def events(self, model: str) -> list[Obj]:
        listed = self.call("list events", self.kube.list, EVENTS, self.namespace)
        return [
            e
            for e in listed
            if e["involvedObject"].get("kind") == "Model" and e["involvedObject"]["name"] == model
        ]

    def patch(self, name: str, what: str, patch: Obj) -> None:
        self.model(name)  # a clear error for a missing Model first
        self.call(what, self.kube.merge_patch, MODELS, self.namespace, name, patch)


def _context_namespace(kubeconfig: str | None) -> str:
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError):
        return "default"
    return str((active.get("context") or {}).get("namespace") or "default")


def _annotate(session: Session, name: str, key: str, value: str, what: str) -> None:
    session.patch(name, what, {"metadata": {"annotations": {key: value}}})


def _canary(session: Session, name: str) -> Obj:
    canary = (session.model(name).get("status") or {}).get("canary")
    if not canary:
        raise PluginError(f'model "{name}" has no rollout in progress')
    return dict(canary)


# --------------------------------------------------------------------------- commands


def status(session: Session, args: argparse.Namespace) -> str:
    def render() -> str:
        models = session.models(args.model)
        if not models:
            return f'no models in namespace "{session.namespace}"'
        parts = [views.table(views.MODEL_HEADER, [views.model_row(m) for m in models], session.tty)]
        for model in models if args.model else []:
            rows = views.verdict_rows(model)
            if rows:
                parts.append(views.table(views.VERDICT_HEADER, rows, session.tty))
            analysis = views.analysis_rows(model)
            if analysis:
                parts.append("canary analysis:\n" + views.table(views.ANALYSIS_HEADER, analysis))
            decisions = views.last_decisions(session.events(model["metadata"]["name"]), 1)
            parts.append("last decision: " + (decisions[0] if decisions else "none yet"))
        return "\n\n".join(parts)

    if not args.watch:
        return render()
    while True:  # until Ctrl-C
        print("\033[2J\033[H" + render() if session.tty else render() + "\n", flush=True)
        time.sleep(args.interval)


def history(session: Session, args: argparse.Namespace) -> str:
    session.model(args.model)
    rows = views.history_rows(session.versions(args.model))
    return views.table(views.HISTORY_HEADER, rows, session.tty) if rows else "no versions yet"


def why(session: Session, args: argparse.Namespace) -> str:
    model = session.model(args.model)
    lines = [
        f"{c['type']}={c['status']} ({c.get('reason', '')}): {c.get('message', '')}"
        for c in (model.get("status") or {}).get("conditions") or []
    ]
    decisions = views.last_decisions(session.events(args.model), args.events)
    text = "\n".join(
        ["conditions:", *("  " + line for line in lines), "decisions (newest last):"]
        + ["  " + d for d in decisions or ["none yet"]]
    )
    judged = views.last_judged(session.versions(args.model))
    if judged is not None:
        phase = (judged.get("status") or {}).get("phase")
        rows = views.gate_rows(judged)
        text += f"\noffline gates of {judged['metadata']['name']} ({phase}):\n"
        text += views.table(views.GATE_HEADER, rows) if rows else "  none"
    return text


def retrain(session: Session, args: argparse.Namespace) -> str:
    _annotate(session, args.model, ANNOTATION_RETRAIN, args.reason, "request a retraining")
    return f"retraining requested for {args.model}: {args.reason}"


def approve(session: Session, args: argparse.Namespace) -> str:
    canary = _canary(session, args.model)
    version = args.version or canary["version"]
    step = canary["step"] if args.step is None else args.step
    _annotate(session, args.model, ANNOTATION_APPROVE, f"{version}/{step}", "approve")
    return f"approved {version} at step {step + 1} of {args.model}"


def abort(session: Session, args: argparse.Namespace) -> str:
    version = _canary(session, args.model)["version"]
    _annotate(session, args.model, ANNOTATION_ABORT, version, "abort the rollout")
    return f"aborting the rollout of {version}: traffic goes back to stable"


def pause(session: Session, args: argparse.Namespace) -> str:
    session.patch(args.model, "pause", {"spec": {"paused": True}})
    return f"{args.model} paused: no rollout step, promotion or training until resumed"


def resume(session: Session, args: argparse.Namespace) -> str:
    session.patch(args.model, "resume", {"spec": {"paused": False}})
    return f"{args.model} resumed"


def undo(session: Session, args: argparse.Namespace) -> str:
    model = session.model(args.model)
    target = args.to or views.previous_version(model, session.versions(args.model))
    if target is None:
        raise PluginError(f'model "{args.model}" has no earlier version to go back to')
    session.patch(args.model, "pin a version", {"spec": {"pinnedVersion": target}})
    return (
        f"{args.model} pinned to {target}: it serves now; no canary starts until the pin "
        f"is removed: kubectl modelloop unpin {args.model}"
    )


def unpin(session: Session, args: argparse.Namespace) -> str:
    pinned = (session.model(args.model).get("spec") or {}).get("pinnedVersion")
    if not pinned:
        raise PluginError(f'model "{args.model}" is not pinned')
    session.patch(args.model, "remove the pin", {"spec": {"pinnedVersion": None}})
    return (
        f"{args.model} no longer pinned to {pinned}: it keeps serving until a newer "
        "validated version is rolled out (as spec.automation allows)"
    )


def lint(paths: list[str]) -> int:
    """Exit status 0: no finding; 1: findings (one line each on stdout); 2: a file could
    not be read or parsed (the others are still linted)."""
    try:  # cel-python comes with the extra, not with the operator
        from . import lint as linting
        from . import sources
    except ImportError as error:
        print(f"error: {error}: pip install 'modelloop[lint]'", file=sys.stderr)
        return 2
    documents, unreadable = sources.read(paths)
    findings = linting.lint(documents)
    if findings:
        print(linting.render(findings))
    for problem in unreadable:
        print(f"error: {problem}", file=sys.stderr)
    files = len({d.file for d in documents})
    print(f"{len(findings)} finding(s) in {files} file(s)", file=sys.stderr)
    return 2 if unreadable else 1 if findings else 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="kubectl modelloop", description=__doc__)
    root.add_argument("-n", "--namespace", help="default: the kubeconfig context's")
    root.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    commands = root.add_subparsers(dest="command", required=True)

    def command(name: str, function: Any, text: str, model: str = "required") -> Any:
        sub = commands.add_parser(name, help=text, description=text)
        if model == "required":
            sub.add_argument("model")
        elif model == "optional":
            sub.add_argument("model", nargs="?")
        sub.set_defaults(func=function)
        return sub

    watched = command("status", status, "Models, per-slice verdicts, the canary", "optional")
    watched.add_argument("-w", "--watch", action="store_true")
    watched.add_argument("--interval", type=float, default=2.0)
    command("history", history, "versions with lineage and outcome")
    why_ = command("why", why, "the conditions and last decisions, with their numbers")
    why_.add_argument("--events", type=int, default=5)
    again = command("retrain", retrain, "ask for a training now")
    again.add_argument("--reason", default="requested with kubectl modelloop")
    for name, function, text in (
        ("promote", approve, "approve the canary's current step"),
        ("approve", approve, "approve a step: a version and a step (default: the current)"),
    ):
        sub = command(name, function, text)
        sub.add_argument("--version")
        sub.add_argument("--step", type=lambda s: int(s) - 1, help="1-based, as printed")
    command("abort", abort, "roll the canary back")
    command("pause", pause, "freeze rollouts and trainings")
    command("resume", resume, "unfreeze")
    back = command("undo", undo, "pin the previous version (or --to VERSION)")
    back.add_argument("--to")
    command("unpin", unpin, "remove spec.pinnedVersion: rollouts may start again")
    text = (
        "check Model, ModelVersion and MetricTemplate manifests offline: the API server's "
        "rules, and the templates the Models' metrics need (exit 0 clean, 1 findings, "
        "2 unreadable input)"
    )
    offline = commands.add_parser("lint", help=text, description=text)
    offline.add_argument("paths", nargs="+", metavar="FILE|DIR", help="- reads stdin")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "lint":
        return lint(args.paths)
    try:
        print(args.func(Session(args), args))
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
