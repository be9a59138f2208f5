"""Which of a Model's children a shard's watches select by the Model's shard label."""

import pytest

from modelloop import handlers
from modelloop.api.resources import MODEL_VERSIONS
from modelloop.control.sharding import Shard
from modelloop.handlers import CHILDREN, MANAGED, child_selectors, workload_selector
from modelloop.handlers.training import JOBS, PODS
from modelloop.kube.rest import DEPLOYMENTS, HTTPROUTES, SERVICES, VIRTUALSERVICES, Resource
from modelloop.rollout.router import INFERENCE_SERVICES


@pytest.mark.parametrize("shard", [Shard(), Shard("default"), Shard("a")])
def test_a_shards_watches_select_the_children_the_operator_makes_for_its_models(
    shard: Shard,
) -> None:
    """Deployments, Services, trainings (Jobs, preset workloads) and the routes and
    InferenceServices ModelLoop made or adopted carry their Model's shard label and are
    selected as the Models are (a user's route is not watched at all: read by its name).
    Pods are not watched at all."""
    selectors = child_selectors(shard)
    term = shard.model_selector()
    for kind in (DEPLOYMENTS, SERVICES, JOBS, HTTPROUTES, VIRTUALSERVICES, INFERENCE_SERVICES):
        expected = CHILDREN[kind] if term is None else f"{CHILDREN[kind]},{term}"
        assert selectors[kind] == expected
    assert workload_selector(shard) == (MANAGED if term is None else f"{MANAGED},{term}")
    assert selectors.keys() == CHILDREN.keys()
    assert PODS not in selectors


@pytest.mark.parametrize("shard", [Shard(), Shard("default"), Shard("a")])
def test_every_list_takes_every_version_and_the_first_every_training(shard: Shard) -> None:
    """A Model that moved here while this replica stood by has ModelVersions labelled for
    its old shard; a version labelled for a shard no instance runs is no watch's; a Job
    made before Jobs carried the label has none: none is any of this shard's watches'.
    Every list takes every version, the first every training; the relists select the
    other kinds as the watches."""
    memo = {"shard": shard, "options": {"namespaces": ["ml"]}}
    workload = Resource("trainer.kubeflow.org", "v1alpha1", "trainjobs")  # a served preset
    first = handlers._listed(memo, [workload], first=True)
    later = handlers._listed(memo, [workload])
    assert [(r, s) for r, s, _ in first if r == MODEL_VERSIONS] == [(MODEL_VERSIONS, None)]
    assert [(r, s) for r, s, _ in later if r == MODEL_VERSIONS] == [(MODEL_VERSIONS, None)]
    assert dict((r, s) for r, s, _ in first)[JOBS] == MANAGED
    assert dict((r, s) for r, s, _ in later)[JOBS] == child_selectors(shard)[JOBS]
    assert dict((r, s) for r, s, _ in first)[workload] == MANAGED
    assert dict((r, s) for r, s, _ in later)[workload] == workload_selector(shard)
    assert {ns for _, _, ns in first + later} == {"ml"}
