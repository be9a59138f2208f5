"""The generated CRDs on a real kube-apiserver: the corpus gets the same verdict as pydantic."""

import copy
import itertools
import json
from typing import Any

import pytest
from localcluster.apply import REPO, install_crd, load
from localcluster.controlplane import ControlPlane, LocalControlPlane
from localcluster.waiting import wait_for
from tests.harness.corpus import CORPUS, CorpusCase

from modelloop.api.manifests import InvalidManifest, validate_manifest
from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import Kube, KubeError, Resource

RESOURCES = {
    "Model": MODELS,
    "ModelVersion": MODEL_VERSIONS,
    "MetricTemplate": Resource(GROUP, VERSION, "metrictemplates"),
}


def _server_verdict(kube: Kube, namespace: str, manifest: dict[str, Any]) -> str | None:
    """None when the API server accepts the manifest, else its error message."""
    try:
        kube.request(
            "POST",
            RESOURCES[manifest["kind"]].path(namespace),
            body=manifest,
            query={"dryRun": "All", "fieldValidation": "Strict"},
        )
    except KubeError as error:
        if error.status not in (400, 422):
            raise
        return error.message
    return None


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_api_server_and_pydantic_agree(kube: Kube, namespace: str, case: CorpusCase) -> None:
    server = _server_verdict(kube, namespace, case.manifest)
    try:
        validate_manifest(case.manifest)
        pydantic: str | None = None
    except InvalidManifest as error:
        pydantic = str(error)
    assert (server is None) == case.valid, server
    assert (pydantic is None) == case.valid, pydantic
    if not case.valid:
        assert server is not None
        assert pydantic is not None
        assert case.message
        assert case.field
        for said in (server, pydantic):
            assert case.message in said
            assert case.field in said, f"the message should name {case.field}: {said}"


def test_defaults_are_filled_in_by_the_api_server(kube: Kube, namespace: str) -> None:
    minimal = next(c for c in CORPUS if c.name == "valid-minimal-model").manifest
    created = kube.create(MODELS, namespace, minimal)
    spec = created["spec"]
    assert [s["weight"] for s in spec["rollout"]["steps"]] == [10, 50, 100]
    assert spec["automation"] == "observe"
    assert spec["traffic"] == {"provider": "replicas"}
    assert spec["serving"]["replicas"] == 1
    assert spec["history"]["keep"] == 5
    assert spec["rollout"]["analysis"]["confidence"] == 0.95


def test_model_version_spec_is_immutable(kube: Kube, namespace: str) -> None:
    version = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": "m-v1"},
        "spec": {"model": "m", "uri": "s3://b/m/1"},
    }
    kube.create(MODEL_VERSIONS, namespace, version)
    with pytest.raises(KubeError) as raised:
        kube.merge_patch(MODEL_VERSIONS, namespace, "m-v1", {"spec": {"uri": "s3://b/m/other"}})
    assert raised.value.status == 422
    assert "ModelVersion spec is immutable" in raised.value.message
    # Status and labels stay writable: the operator records phases and roles there.
    kube.merge_patch(MODEL_VERSIONS, namespace, "m-v1", {"metadata": {"labels": {"a": "b"}}})


def test_a_models_versions_are_selected_by_the_api_server(kube: Kube, namespace: str) -> None:
    """spec.model is a selectable field: one Model's versions are one small list, not the
    namespace's (``kubectl get mv --field-selector spec.model=m`` too)."""
    for model, name in (("m", "m-v1"), ("m", "m-v2"), ("other", "other-v1")):
        kube.create(
            MODEL_VERSIONS,
            namespace,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ModelVersion",
                "metadata": {"name": name},
                "spec": {"model": model, "uri": f"s3://b/{name}"},
            },
        )
    counted: list[str] = []
    kube.on_request = lambda verb, resource: counted.append(verb)
    found = kube.versions_of(namespace, "m", fresh=True)
    assert sorted(v["metadata"]["name"] for v in found) == ["m-v1", "m-v2"]
    assert counted == ["list"]  # selected by the server: no fallback to the namespace's list


def test_printer_columns_show_phase_and_versions(kube: Kube, namespace: str) -> None:
    minimal = next(c for c in CORPUS if c.name == "valid-minimal-model").manifest
    kube.create(MODELS, namespace, minimal)
    kube.merge_patch(
        MODELS,
        namespace,
        "tiny",
        {"status": {"phase": "Serving", "stableVersion": "tiny-v1"}},
        sub="status",
    )
    table = kube.request(
        "GET",
        MODELS.path(namespace),
        content_type="application/json",
        accept="application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Phase", "Stable", "Canary", "Weight"]
    assert table["rows"][0]["cells"][1:3] == ["Serving", "tiny-v1"]


def _verdicts(value: float) -> list[dict[str, Any]]:
    return [
        {
            "kind": "metric",
            "metric": "accuracy",
            "slice": slice_,
            "version": "m-v1",
            "samples": 600,
            "since": "2026-12-03T17:00:00Z",
            "value": value,
            "verdict": "pass",
        }
        for slice_ in ("all", "mobile")
    ]


def _status_fields(kube: Kube, namespace: str, name: str, value: float) -> str:
    """A status patch of the Model's verdicts, as the operator writes them; the field
    paths the API server then tracks for the status, as JSON."""
    body = {"status": {"verdicts": _verdicts(value)}}
    written = kube.merge_patch(MODELS, namespace, name, body, sub="status")
    entries = written["metadata"]["managedFields"]
    return json.dumps([e["fieldsV1"] for e in entries if e.get("subresource") == "status"])


def test_status_lists_turn_atomic_on_an_upgrade_of_the_crd(
    kube: Kube, namespace: str, control_plane: ControlPlane
) -> None:
    """Models written under the CRD whose status lists were list maps (before the status
    lists became atomic) take status patches under the new CRD, and their managedFields
    drop the per-entry field paths."""
    if not isinstance(control_plane, LocalControlPlane):
        pytest.skip("replaces the Model CRD for a while: only on the suites' own cluster")
    current = load(REPO / "crds" / "models.modelloop.dev.yaml")[0]
    old = copy.deepcopy(current)
    status = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    status["properties"]["verdicts"] |= {
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["kind", "metric", "slice", "version"],
    }
    minimal = next(c for c in CORPUS if c.name == "valid-minimal-model").manifest
    name = minimal["metadata"]["name"]
    # Each poll writes new values: the API server attributes only the fields a write
    # changes, so a patch that landed before the old CRD was served, repeated unchanged,
    # would never show the per-entry paths.
    values = (round(0.5 + i / 1000, 3) for i in itertools.count())
    try:
        install_crd(kube, old)
        kube.create(MODELS, namespace, minimal)
        wait_for(
            lambda: '"k:{' in _status_fields(kube, namespace, name, next(values)),
            30,
            "the API server to track each verdict (the old CRD served)",
        )
    finally:
        install_crd(kube, current)

    written: list[float] = []

    def tracked_whole() -> str:
        written.append(next(values))
        fields = _status_fields(kube, namespace, name, written[-1])
        return fields if '"k:{' not in fields else ""

    fields = wait_for(tracked_whole, 30, "the verdicts tracked as one field (the new CRD)")
    assert '"f:verdicts":{}' in fields.replace(" ", "")
    model = kube.get(MODELS, namespace, name)
    assert model is not None
    assert [v["value"] for v in model["status"]["verdicts"]] == [written[-1]] * 2
