"""Which version serves, from the evidence in the world (pure, table-driven)."""

import pytest

from modelloop.serving.plan import VersionView, choose_stable


def v(
    name: str,
    phase: str | None = None,
    role: str | None = None,
    since: str | None = None,
    created: str = "",
) -> VersionView:
    return VersionView(name, f"s3://m/{name}", phase, role, since, created or name)


V1, V2, V3 = "m-v1", "m-v2", "m-v3"

CASES = [
    # (id, pinned, status.stableVersion, versions, deployed versions, expected, reason)
    ("nothing-yet", None, None, [], [], None, "NoVersion"),
    ("bootstrap-first", None, None, [v(V2), v(V1, created="a")], [], V1, "Bootstrap"),
    ("bootstrap-skips-rejected", None, None, [v(V1, "Rejected"), v(V2)], [], V2, "Bootstrap"),
    ("pin-wins", V1, V2, [v(V1), v(V2, "Serving", "stable")], [V2], V1, "Pinned"),
    ("pin-unknown-keeps-stable", "m-v9", None, [v(V1, "Serving", "stable")], [], V1, "RoleLabel"),
    (
        "label-survives-lost-status",
        None,
        None,
        [v(V1, "Retired"), v(V2, None, "stable")],
        [],
        V2,
        "RoleLabel",
    ),
    (
        "latest-label-wins-after-crash",
        None,
        None,
        [
            v(V1, "Serving", "stable", "2026-01-01T00:00:00Z"),
            v(V2, "Serving", "stable", "2026-01-02T00:00:00Z"),
        ],
        [],
        V2,
        "RoleLabel",
    ),
    (
        "serving-phase-without-label",
        None,
        None,
        [v(V1, "Retired"), v(V2, "Serving")],
        [],
        V2,
        "ServingPhase",
    ),
    ("status-after-labels-lost", None, V2, [v(V1), v(V2)], [], V2, "Status"),
    ("running-deployment", None, None, [v(V1), v(V2)], [V2], V2, "RunningDeployment"),
    ("never-fall-back-to-first", None, V3, [v(V1), v(V2)], [], None, "StableVersionMissing"),
    ("deployment-of-deleted-version", None, None, [v(V1)], [V3], None, "StableVersionMissing"),
    (
        "served-before-no-bootstrap",
        None,
        None,
        [v(V1, "Retired"), v(V2)],
        [],
        None,
        "StableVersionMissing",
    ),
]


@pytest.mark.parametrize(
    ("pinned", "status_stable", "versions", "deployed", "expected", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_choose_stable(
    pinned: str | None,
    status_stable: str | None,
    versions: list[VersionView],
    deployed: list[str],
    expected: str | None,
    reason: str,
) -> None:
    choice = choose_stable(pinned, status_stable, versions, deployed)
    assert (choice.version, choice.reason) == (expected, reason)
    assert choice.message
