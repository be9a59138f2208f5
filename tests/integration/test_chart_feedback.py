"""The chart's optional feedback service (feedback.enabled): off by default; with either
store it renders valid Kubernetes objects that pass checkov as the rest of the chart does,
its settings reach the service, and nothing of the operator's selects its pods."""

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from localcluster.chart import CHART, REPO, helm, render
from tests.integration.test_chart import JUSTIFIED, KUBERNETES_VERSION

SQLITE = ("--set", "feedback.enabled=true", "--set", "feedback.settings.horizon=14d")
REDIS = (
    *("--set", "feedback.enabled=true", "--set", "feedback.replicaCount=3"),
    *("--set", "feedback.store.type=redis", "--set", "feedback.store.redis.cluster=true"),
    *("--set", "feedback.store.redis.urlSecret.secret=feedback-redis"),
)
Obj = dict[str, Any]


def feedback_objects(manifests: list[Obj]) -> dict[str, Obj]:
    return {
        m["kind"]: m
        for m in manifests
        if m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "feedback"
    }


def container(objects: dict[str, Obj]) -> Obj:
    [found] = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert isinstance(found, dict)
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True)


def test_off_by_default() -> None:
    assert feedback_objects(render()) == {}


def test_the_sqlite_store_is_one_replica_on_a_kept_claim() -> None:
    objects = feedback_objects(render(*SQLITE))
    assert sorted(objects) == [
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
    ]
    deployment = objects["Deployment"]
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]) == (
        1,
        {"type": "Recreate"},
    )
    claim = objects["PersistentVolumeClaim"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert container(objects)["args"] == [
        "feedback",
        "--config=/etc/modelloop-feedback/feedback.yaml",
        "--listen=0.0.0.0:8080",
        "--store-path=/var/lib/modelloop-feedback/feedback.db",
    ]
    settings = yaml.safe_load(objects["ConfigMap"]["data"]["feedback.yaml"])
    assert settings == {"horizon": "14d"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False


def test_the_redis_store_reads_its_url_from_a_mounted_secret_with_many_replicas() -> None:
    objects = feedback_objects(render(*REDIS))
    assert "PersistentVolumeClaim" not in objects
    assert objects["Deployment"]["spec"]["replicas"] == 3
    assert "strategy" not in objects["Deployment"]["spec"]
    served = container(objects)
    assert not any(a.startswith("--store-path") for a in served["args"])
    assert "env" not in served
    [mount] = [m for m in served["volumeMounts"] if m["name"] == "redis"]
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "redis"]
    assert volume["secret"]["secretName"] == "feedback-redis"
    assert volume["secret"]["items"] == [{"key": "url", "path": "url"}]
    settings = yaml.safe_load(objects["ConfigMap"]["data"]["feedback.yaml"])
    url_file = f"{mount['mountPath']}/url"
    assert settings == {"store": {"redis": {"cluster": True, "urlFile": url_file}}}


def test_a_redis_url_without_a_secret_goes_in_the_settings() -> None:
    objects = feedback_objects(
        render(
            *("--set", "feedback.enabled=true", "--set", "feedback.store.type=redis"),
            *("--set", "feedback.store.redis.url=redis://valkey.data:6379/2"),
        )
    )
    settings = yaml.safe_load(objects["ConfigMap"]["data"]["feedback.yaml"])
    assert settings == {"store": {"redis": {"cluster": False, "url": "redis://valkey.data:6379/2"}}}


def test_nothing_of_the_operators_selects_the_feedback_pods() -> None:
    manifests = render(*SQLITE, "--set", "metrics.serviceMonitor.enabled=true")
    objects = feedback_objects(manifests)
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for manifest in manifests:
        if manifest in objects.values():
            continue
        spec = manifest.get("spec") or {}
        selector = spec.get("selector") or spec.get("podSelector") or {}
        labels = selector.get("matchLabels", selector if manifest["kind"] == "Service" else {})
        if labels:
            assert not labels.items() <= pod_labels.items(), manifest["metadata"]["name"]


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        (("feedback.replicaCount=2",), "replicaCount"),  # the SQLite store: one replica
        (("feedback.store.type=redis",), "redis"),  # without a URL
        (("feedback.store.type=etcd",), "type"),
        (("feedback.store.type=redis", "feedback.store.redis.url=http://x"), "url"),
        (("feedback.surprise=1",), "surprise"),
    ],
)
def test_values_outside_the_schema_are_refused(settings: tuple[str, ...], complaint: str) -> None:
    sets = [arg for setting in settings for arg in ("--set", setting)]
    result = run(helm(), "template", "x", str(CHART), "--set", "feedback.enabled=true", *sets)
    assert result.returncode != 0
    assert complaint in result.stderr, result.stderr


def test_lint_and_kubernetes_schemas_pass_with_either_store() -> None:
    for variant in (SQLITE, REDIS):
        linted = run(helm(), "lint", "--strict", str(CHART), *variant)
        assert linted.returncode == 0, linted.stdout + linted.stderr
        for manifest in feedback_objects(render(*variant)).values():
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_checkov_finds_nothing_unjustified(tmp_path: Path) -> None:
    checkov = run(str(REPO / "hack" / "checkov.sh")).stdout.strip()
    for name, variant in (("sqlite", SQLITE), ("redis", REDIS)):
        rendered = tmp_path / f"{name}.yaml"
        rendered.write_text(yaml.safe_dump_all(render(*variant)))
        result = run(
            checkov,
            *("--file", str(rendered), "--framework", "kubernetes", "--output", "json"),
            *("--skip-check", ",".join(sorted(JUSTIFIED)), "--quiet", "--compact"),
        )
        report = json.loads(result.stdout)
        failed = report["results"]["failed_checks"] if isinstance(report, dict) else []
        findings = [(f["check_id"], f["check_name"], f["resource"]) for f in failed]
        assert findings == [], (name, findings)
