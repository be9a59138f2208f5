"""Which Models a shard acts on, its watch's label selector and its Lease, on tables of
cases; ``owns`` agrees with the selector on every case."""

from typing import Any

import pytest

from modelloop.control.sharding import (
    Shard,
    version_label_patch,
    version_labels,
    version_unplace_patch,
)

LABEL = "modelloop.dev/shard"
UNSHARDED, DEFAULT, A = Shard(), Shard("default"), Shard("a")
MODELS = {
    "unlabelled": {},
    "other labels only": {"team": "fraud"},
    "in a": {LABEL: "a", "team": "fraud"},
    "in b": {LABEL: "b"},
    "labelled default": {LABEL: "default"},  # not a label value: nobody's but unsharded
    "empty value": {LABEL: ""},
}


@pytest.mark.parametrize(
    ("shard", "selector"),
    [
        (UNSHARDED, None),
        (DEFAULT, "!modelloop.dev/shard"),
        (A, "modelloop.dev/shard=a"),
        (Shard("eu-west-1"), "modelloop.dev/shard=eu-west-1"),
    ],
)
def test_model_selector(shard: Shard, selector: str | None) -> None:
    assert shard.model_selector() == selector


@pytest.mark.parametrize(
    ("shard", "lease"),
    [(UNSHARDED, "modelloop"), (DEFAULT, "modelloop-default"), (A, "modelloop-a")],
)
def test_each_shard_elects_on_a_lease_of_its_own(shard: Shard, lease: str) -> None:
    assert shard.lease_name("modelloop") == lease


@pytest.mark.parametrize(
    ("shard", "owned"),
    [
        (UNSHARDED, set(MODELS)),
        (DEFAULT, {"unlabelled", "other labels only"}),
        (A, {"in a"}),
        (Shard("b"), {"in b"}),
        (Shard("c"), set()),
    ],
)
def test_owns(shard: Shard, owned: set[str]) -> None:
    assert {name for name, labels in MODELS.items() if shard.owns(labels)} == owned


def matches(selector: str | None, labels: dict[str, str]) -> bool:
    """The API server's reading of the two selector forms the shards use."""
    if selector is None:
        return True
    if selector.startswith("!"):
        return selector[1:] not in labels
    key, _, value = selector.partition("=")
    return labels.get(key) == value


@pytest.mark.parametrize("shard", [UNSHARDED, DEFAULT, A, Shard("b")])
def test_owns_is_the_selector(shard: Shard) -> None:
    for labels in MODELS.values():
        assert shard.owns(labels) == matches(shard.model_selector(), labels), labels


@pytest.mark.parametrize(
    "name", ["", "A", "a_b", "-a", "a-", "a.b", "a/b", "x" * 64, "shard a", "ä"]
)
def test_a_name_that_cannot_be_a_label_value_and_a_lease_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="shard name"):
        Shard(name)


@pytest.mark.parametrize("name", ["a", "0", "eu-west-1", "x" * 63])
def test_valid_names(name: str) -> None:
    assert Shard(name).name == name


@pytest.mark.parametrize(
    ("shard", "selectors"),
    [
        (UNSHARDED, [None]),
        (DEFAULT, ["modelloop.dev/shard=default", "!modelloop.dev/shard"]),
        (A, ["modelloop.dev/shard=a", "!modelloop.dev/shard"]),
    ],
)
def test_a_shard_watches_its_own_versions_and_the_unplaced(
    shard: Shard, selectors: list[str | None]
) -> None:
    assert shard.version_selectors() == selectors


def model(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def version(rv: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "churn-v1", "resourceVersion": rv, "labels": labels}}


PLACED_A = {LABEL: "a", "modelloop.dev/model": "churn"}


@pytest.mark.parametrize(
    ("case", "of_model", "held", "patch"),
    [
        ("unplaced", model("churn", **{LABEL: "a"}), version("7"), PLACED_A),
        ("placed", model("churn", **{LABEL: "a"}), version("7", **PLACED_A), None),
        (
            "moved from b",
            model("churn", **{LABEL: "a"}),
            version("7", **{LABEL: "b", "modelloop.dev/model": "churn", "team": "x"}),
            {LABEL: "a"},
        ),
        (
            "the default shard's: named, so that the unplaced stay few",
            model("churn"),
            version("7", team="x"),
            {LABEL: "default", "modelloop.dev/model": "churn"},
        ),
        (
            "its model label wrong",
            model("churn", **{LABEL: "a"}),
            version("7", **{LABEL: "a", "modelloop.dev/model": "fraud"}),
            {"modelloop.dev/model": "churn"},
        ),
    ],
)
def test_version_label_patch(
    case: str, of_model: dict[str, Any], held: dict[str, Any], patch: dict[str, str] | None
) -> None:
    expected = None if patch is None else {"metadata": {"labels": patch, "resourceVersion": "7"}}
    assert version_label_patch(of_model, held) == expected, case
    patched = {**held["metadata"]["labels"], **(patch or {})}
    assert patched.items() >= version_labels(of_model).items()  # labelled as its shard's


def test_version_unplace_patch_removes_only_the_shard_label_guarded() -> None:
    held = {"metadata": {"labels": {LABEL: "a", "team": "x"}, "resourceVersion": "9"}}
    assert version_unplace_patch(held) == {
        "metadata": {"labels": {LABEL: None}, "resourceVersion": "9"}
    }
