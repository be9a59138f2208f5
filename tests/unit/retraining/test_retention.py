"""Retention keeps the newest versions ModelLoop made, besides those that serve or roll
out, and never deletes a version applied from outside."""

from typing import Any

import pytest

from modelloop.retraining.retention import expired


def version(
    n: int,
    role: str | None = None,
    created: int | None = None,
    trained: bool = True,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_labels = {"app.kubernetes.io/managed-by": "modelloop"} if trained else {}
    all_labels |= {"modelloop.dev/role": role} if role else {}
    all_labels |= labels or {}
    lineage = {"sequence": n} if trained else {}
    return {
        "metadata": {
            "name": f"fd-v{n}",
            "labels": all_labels,
            "annotations": annotations or {},
            "creationTimestamp": f"2026-11-{created or n:02d}T00:00:00Z",
        },
        "spec": {"model": "fd", "uri": f"s3://fd/{n}", "lineage": lineage},
    }


def test_keeps_the_newest_and_everything_serving() -> None:
    versions = [version(n) for n in range(1, 10)]
    versions[0] = version(1, role="stable")  # an old stable version is never deleted
    assert expired(versions, keep=3, stable="fd-v1", canary="fd-v9") == [
        "fd-v2",
        "fd-v3",
        "fd-v4",
        "fd-v5",
    ]


def test_nothing_expires_under_the_limit() -> None:
    assert expired([version(1), version(2)], keep=5, stable="fd-v2", canary=None) == []


@pytest.mark.parametrize(
    "outside",
    [
        version(2, trained=False),  # applied from Git: no managed-by label, no lineage
        version(2, annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"}),
        version(2, annotations={"argocd.argoproj.io/tracking-id": "app:modelloop.dev/..."}),
        version(2, labels={"app.kubernetes.io/instance": "my-argo-app"}),
    ],
)
def test_a_version_applied_from_outside_is_never_deleted(outside: dict[str, Any]) -> None:
    versions = [version(1), outside, *(version(n) for n in range(3, 8))]
    gone = expired(versions, keep=1, stable="fd-v7", canary=None)
    assert "fd-v2" not in gone
    assert gone == ["fd-v1", "fd-v3", "fd-v4", "fd-v5"]


def test_newest_is_the_highest_sequence_not_the_latest_creation() -> None:
    # fd-v1 was deleted and re-created (e.g. restored from a backup) today: still the oldest.
    versions = [version(1, created=28), version(2, created=2), version(3, created=3)]
    assert expired(versions, keep=2, stable=None, canary=None) == ["fd-v1"]
