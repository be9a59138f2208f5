"""``modelloop`` / ``python -m modelloop``: run the operator, print its CRDs, or run the
feedback service."""

import argparse
import logging
import os
import sys

from .feedback.config import add_arguments as feedback_arguments


def _run(args: argparse.Namespace) -> int:
    import kopf

    # handlers registers them; handlers.notifications after the others (see its docstring).
    from . import gc_tuning, handlers  # noqa: F401
    from .handlers import notifications as _notifications  # noqa: F401
    from .kube.discovery import wait_for_discovery
    from .kube.ratelimit import WriteLimiter
    from .kube.rest import Kube
    from .monitoring.series import series_limits
    from .notify.settings import load_settings

    notifications = load_settings(args.notifications)  # a broken file fails at start-up
    series_limits(os.environ)  # so does a bad MODELLOOP_METRICS_* setting
    WriteLimiter(args.write_qps, args.write_burst)  # and a write limit that cannot be
    gc_tuning.tune()
    gc_tuning.trim_periodically()

    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("modelloop").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # one line per Prometheus query
    if not args.verbose:  # kopf's "Handler ... succeeded.": a line per watch event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    election = None
    if args.leader_elect:
        namespace, _, name = args.leader_elect.rpartition("/")
        election = (namespace or _operator_namespace(), name)
    kube = Kube.from_environment()
    wait_for_discovery(kube)  # before kopf resolves what it watches, once
    kube.close()
    options = {
        "providers": args.providers,
        "notifications": notifications,
        "metrics_address": args.metrics_address,
        "leader_election": election,
        "namespaces": args.namespace or (),
        "shard": args.shard,
        "write_limit": (args.write_qps, args.write_burst),
        "resync_seconds": args.resync_period,
    }
    kopf.run(
        memo=kopf.Memo(options=options),
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=args.liveness,
    )
    return 0


def _shard_name(text: str) -> str:
    from .control.sharding import Shard

    try:
        Shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return seconds


def _operator_namespace() -> str:
    from .handlers.evaluation import operator_namespace

    return operator_namespace()


def _crds(args: argparse.Namespace) -> int:
    from .api.crdgen import rendered_files

    sys.stdout.write("---\n".join(rendered_files().values()))
    return 0


def _feedback(args: argparse.Namespace) -> int:
    from .feedback.server import main as serve

    return serve(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelloop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator (kubeconfig or in-cluster)")
    run.add_argument(
        "-n", "--namespace", action="append", help="watch only this namespace (repeatable)"
    )
    run.add_argument("--liveness", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument(
        "--providers",
        help="Prometheus providers file (default: $MODELLOOP_PROVIDERS; or a provider "
        "'default' at $MODELLOOP_PROMETHEUS_URL)",
    )
    run.add_argument(
        "--notifications",
        help="notification settings file: the operator's own receivers, timeouts, retries "
        "(default: $MODELLOOP_NOTIFICATIONS; or none)",
    )
    run.add_argument(
        "--metrics-address",
        default="0.0.0.0:8000",
        help="where the operator serves its own /metrics (empty: nowhere)",
    )
    run.add_argument(
        "--leader-elect",
        metavar="[NAMESPACE/]LEASE",
        help="act only while holding this Lease (standby replicas); default namespace: "
        "the operator's",
    )
    run.add_argument(
        "--shard",
        metavar="NAME",
        type=_shard_name,
        help="act only on the Models labelled modelloop.dev/shard=NAME ('default': those "
        "without the label), electing the leader on the Lease LEASE-NAME (docs/sharding.md); "
        "default: every Model",
    )
    run.add_argument(
        "--write-qps",
        type=float,
        default=200.0,
        help="writes to the Kubernetes API per second, sustained (rollbacks pass first)",
    )
    run.add_argument(
        "--write-burst", type=int, default=400, help="writes to the Kubernetes API at once"
    )
    run.add_argument(
        "--resync-period",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how often Models that wait on time (a canary step, a cooldown, a schedule) "
        "are looked at again, and a shard drops other shards' objects and unplaces "
        "versions labelled for it of Models it does not hold; the watch caches are listed "
        "again every 20 periods; every change the operator reads wakes its Model at once",
    )
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)
    crds = commands.add_parser("crds", help="print the CustomResourceDefinitions as YAML")
    crds.set_defaults(func=_crds)
    feedback = commands.add_parser(
        "feedback", help="run the feedback service: predictions joined with their late labels"
    )
    feedback_arguments(feedback)
    feedback.set_defaults(func=_feedback)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
