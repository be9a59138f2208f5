"""Retention keeps the newest versions besides those that serve or roll out."""

from typing import Any

from modelloop.retraining.retention import expired


def version(n: int, role: str | None = None) -> dict[str, Any]:
    labels = {"modelloop.dev/role": role} if role else {}
    return {
        "metadata": {
            "name": f"fd-v{n}",
            "labels": labels,
            "creationTimestamp": f"2026-11-{n:02d}T00:00:00Z",
        }
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
