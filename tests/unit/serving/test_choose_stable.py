"""Which version serves, from the evidence in the world (pure, table-driven)."""

import pytest
from tests.unit.models import version_view as v

from modelloop.serving.plan import VersionView, choose_stable


def served(name: str) -> VersionView:
    """A version restored without its status: its metadata says it served."""
    return v(name, served="2026-01-01T00:00:00Z")


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
    # A restore that drops status (Velero's default) brings Models before ModelVersions,
    # and a Model's versions one by one: v1 (retired long ago) is back, v2 (which serves)
    # is not yet. v1's metadata says it served, so it is not bootstrapped in v2's place.
    (
        "restore-first-version-served-before",
        None,
        None,
        [served(V1)],
        [],
        None,
        "StableVersionMissing",
    ),
    # ... and once v2 is back, its label chooses it.
    ("restore-complete", None, None, [served(V1), v(V2, None, "stable")], [], V2, "RoleLabel"),
    # Versions restored without the operator's metadata (applied from a manifest) are new.
    ("restore-without-metadata", None, None, [v(V1), v(V2)], [], V1, "Bootstrap"),
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


def test_a_model_that_served_before_names_the_versions_and_the_way_out() -> None:
    choice = choose_stable(None, None, [served(V1), v(V2, "RolledBack")], [])
    assert choice.version is None
    assert choice.message.startswith(f"{V1}, {V2} served before and no version serves now")
    assert "spec.pinnedVersion" in choice.message
