"""kopf's settings as the operator starts (handlers.configure): how it lists, how long
its per-object workers live, and what each watch selects on the API server."""

import kopf
import pytest

from modelloop.api.vocabulary import GROUP, LABEL_SHARD
from modelloop.control.sharding import UNPLACED, Shard
from modelloop.handlers import WORKER_IDLE_SECONDS, configure
from modelloop.handlers.diffbase import NoDiffBase
from modelloop.kube.rest import PAGE


def configured(shard: Shard) -> tuple[kopf.OperatorSettings, list[str | None]]:
    settings = kopf.OperatorSettings()
    return settings, configure(settings, shard)


def test_kopf_lists_in_pages_and_lets_an_idle_objects_worker_go_soon() -> None:
    """A whole list of 2500 Models held 134 MiB decoded, a page of 500 27 MiB, of 100
    4 MiB (kube.rest.PAGE); an idle worker holds its object's last body, for 5 s by
    kopf's default (docs/scale.md)."""
    settings, _ = configured(Shard())
    assert settings.watching.chunk_size == PAGE
    assert settings.queueing.idle_timeout == WORKER_IDLE_SECONDS
    assert kopf.OperatorSettings().queueing.idle_timeout > WORKER_IDLE_SECONDS
    assert isinstance(settings.persistence.diffbase_storage, NoDiffBase)


def test_unsharded_every_model_and_version_is_watched_and_children_by_label() -> None:
    settings, unplaced = configured(Shard())
    selectors = settings.watching.label_selectors
    assert (GROUP, "models") not in selectors
    assert (GROUP, "modelversions") not in selectors
    assert ("apps", "v1", "deployments") in selectors  # children: ModelLoop's own only
    assert unplaced == []


@pytest.mark.parametrize(
    ("shard", "models", "versions"),
    [
        ("s1", f"{LABEL_SHARD}=s1", f"{LABEL_SHARD}=s1"),
        ("default", f"!{LABEL_SHARD}", f"{LABEL_SHARD}=default"),
    ],
)
def test_a_shard_watches_its_own_models_and_versions_and_follows_the_unplaced(
    shard: str, models: str, versions: str
) -> None:
    settings, unplaced = configured(Shard(shard))
    selectors = settings.watching.label_selectors
    assert selectors[GROUP, "models"] == models
    assert selectors[GROUP, "modelversions"] == versions
    assert unplaced == [UNPLACED]  # kopf's one selector per kind cannot hold both
