"""A version that took production traffic says so in its metadata (``ANNOTATION_SERVED``),
which a restore keeps where it drops status: a Model whose versions come back one by one
does not bootstrap an old one while the serving one is still on its way."""

from tests.unit.handlers.test_serving_bootstrap import named, new_model, serving
from tests.unit.handlers.test_training_writes import NS
from tests.unit.memory_api import Api

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import ANNOTATION_ROLE_SINCE, ANNOTATION_SERVED, LABEL_ROLE
from modelloop.handlers.serving import reconcile_serving
from modelloop.kube.rest import Obj


def annotations(api: Api, name: str) -> dict[str, str]:
    return dict(api.objects["modelversions", name]["metadata"].get("annotations") or {})


def restored(name: str, **labels: str) -> Obj:
    """A version as a restore brings it back: metadata kept, status dropped."""
    back = named(name, None, **labels)
    back["metadata"]["annotations"] = {ANNOTATION_SERVED: "2026-01-01T00:00:00Z"}
    return back


def ready(api: Api) -> Obj:
    conditions = api.objects["models", "fd"]["status"]["conditions"]
    return next(c for c in conditions if c["type"] == "Ready")


def test_the_bootstrapped_version_is_recorded_as_served_with_its_role() -> None:
    api = Api((MODELS, new_model()), (MODEL_VERSIONS, named("fd-v1", None)))
    reconcile_serving(api, NS, "fd")
    marks = annotations(api, "fd-v1")
    assert marks[ANNOTATION_SERVED] == marks[ANNOTATION_ROLE_SINCE]


def test_a_restore_bringing_versions_one_by_one_waits_for_the_serving_one() -> None:
    api = Api((MODELS, new_model()), (MODEL_VERSIONS, restored("fd-v1")))
    reconcile_serving(api, NS, "fd")
    assert serving(api) == []
    assert ("deployments", "fd-v1") not in api.objects
    assert (ready(api)["status"], ready(api)["reason"]) == ("False", "StableVersionMissing")
    assert "fd-v1 served before" in ready(api)["message"]

    api.objects["modelversions", "fd-v2"] = restored("fd-v2", **{LABEL_ROLE: "stable"})
    reconcile_serving(api, NS, "fd")
    assert serving(api) == ["fd-v2"]
    assert api.objects["deployments", "fd-v2"]
    assert ("deployments", "fd-v1") not in api.objects


def test_versions_that_served_before_the_annotation_are_recorded_once() -> None:
    api = Api(
        (MODELS, new_model()),
        (MODEL_VERSIONS, named("fd-v1", "Retired")),
        (MODEL_VERSIONS, named("fd-v2", "Serving", **{LABEL_ROLE: "stable"})),
    )
    reconcile_serving(api, NS, "fd")
    assert ANNOTATION_SERVED in annotations(api, "fd-v1")
    assert ANNOTATION_SERVED in annotations(api, "fd-v2")
    assert ANNOTATION_ROLE_SINCE not in annotations(api, "fd-v2")  # its role is not re-dated
    api.writes.clear()
    reconcile_serving(api, NS, "fd")
    assert [w for w in api.writes if w[1] == "modelversions"] == []
