"""The generated CRDs on a real kube-apiserver: the corpus gets the same verdict as pydantic."""

from typing import Any

import pytest
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
