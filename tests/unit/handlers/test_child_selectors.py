"""Which of a Model's children a shard's watches select by the Model's shard label."""

import pytest

from modelloop.control.sharding import Shard
from modelloop.handlers import CHILDREN, child_selectors
from modelloop.handlers.training import JOBS, PODS
from modelloop.kube.rest import DEPLOYMENTS, SERVICES


@pytest.mark.parametrize("shard", [Shard(), Shard("default"), Shard("a")])
def test_a_shards_watches_select_its_models_deployments_and_services_only(shard: Shard) -> None:
    """The Deployments and Services carry their Model's shard label and are selected as
    the Models are; a training's Job and pods are few and keep the plain selector."""
    selectors = child_selectors(shard)
    term = shard.model_selector()
    for kind in (DEPLOYMENTS, SERVICES):
        expected = CHILDREN[kind] if term is None else f"{CHILDREN[kind]},{term}"
        assert selectors[kind] == expected
    for kind in (JOBS, PODS):
        assert selectors[kind] == CHILDREN[kind]
    assert selectors.keys() == CHILDREN.keys()
