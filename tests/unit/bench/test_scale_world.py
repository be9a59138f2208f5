"""bench.scale's fleet: the versions of a shard whose operator the run leaves out are
created placed in it, as that operator would label them; the others are left for their
shard's operator to place."""

import pytest
from bench.scale.world import ModelPlan, plan_fleet, version_manifests

from modelloop.api.vocabulary import LABEL_ROLE, LABEL_SHARD


@pytest.mark.parametrize("canary", [False, True])
def test_placed_versions_carry_their_models_shard_beside_the_role(canary: bool) -> None:
    plan = ModelPlan("m0001", 3, canary, "s1")
    placed = [m["metadata"]["labels"] for m, _ in version_manifests(plan, placed=True)]
    left = [m["metadata"]["labels"] for m, _ in version_manifests(plan)]

    assert all(labels[LABEL_SHARD] == "s1" for labels in placed)
    assert all(LABEL_SHARD not in labels for labels in left)
    assert [{k: v for k, v in p.items() if k != LABEL_SHARD} for p in placed] == left
    assert sum(labels.get(LABEL_ROLE) == "stable" for labels in placed) == 1


def test_an_unsharded_fleets_versions_stay_unlabelled_even_if_placed() -> None:
    plan = plan_fleet(2, 1, seed=1)[0]
    assert all(
        LABEL_SHARD not in m["metadata"]["labels"] for m, _ in version_manifests(plan, placed=True)
    )
