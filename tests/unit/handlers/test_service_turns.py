"""A new Model whose Service must wait for a turn (control.turns): its pass applies the
rest, says so in Ready, and creates the Service when its turn comes."""

from collections.abc import Hashable
from datetime import UTC, datetime, timedelta

from tests.unit.handlers.test_training_writes import NS, events, model, version
from tests.unit.memory_api import Api

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.conditions import find
from modelloop.control.turns import Turns
from modelloop.handlers.serving import reconcile_serving
from modelloop.kube.rest import Obj


def fresh() -> Api:
    created, first = model(), version()
    created.pop("status")
    first.pop("status")
    return Api((MODELS, created), (MODEL_VERSIONS, first))


def ready(api: Api) -> Obj:
    conditions = (api.objects["models", "fd"].get("status") or {}).get("conditions") or []
    found = find(conditions, "Ready")
    assert found is not None
    return found


def made(api: Api) -> list[tuple[str, str, str]]:
    return [w for w in api.writes if w[1] in ("deployments", "services")]


def test_without_a_turn_the_deployment_is_applied_and_ready_names_the_wait() -> None:
    api, woken = fresh(), list[Hashable]()
    turns = Turns(1, woken.append)
    with turns.turn((NS, "other")):  # another Model's Service is being created
        reconcile_serving(api, NS, "fd", turns=turns)
        turns.passed((NS, "fd"))
        assert made(api) == [("apply", "deployments", "")]
        assert (ready(api)["status"], ready(api)["reason"]) == ("False", "ServicePending")
        assert "Service fd waits its turn" in ready(api)["message"]
        assert events(api).count("Created") == 1
        assert turns.waiting() == 1  # modelloop_service_turns_waiting
    assert woken == [(NS, "fd")]
    reconcile_serving(api, NS, "fd", turns=turns)
    assert made(api) == [("apply", "deployments", ""), ("apply", "services", "")]
    assert turns.waiting() == 0
    assert ready(api)["reason"] == "DeploymentProgressing"  # the Deployment's own state
    assert events(api).count("Created") == 2  # "Created Deployment fd-v1", "Created Service fd"


def test_with_a_turn_free_the_pass_creates_both_at_once() -> None:
    api, woken = fresh(), list[Hashable]()
    reconcile_serving(api, NS, "fd", turns=Turns(1, woken.append))
    assert made(api) == [("apply", "deployments", ""), ("apply", "services", "")]
    assert ready(api)["reason"] == "DeploymentPending"
    assert woken == []


def test_an_existing_service_needs_no_turn() -> None:
    api, woken = fresh(), list[Hashable]()
    reconcile_serving(api, NS, "fd")
    api.objects["models", "fd"]["metadata"]["generation"] = 2
    api.objects["models", "fd"]["spec"]["serving"]["replicas"] = 3  # the Deployment's only
    turns = Turns(1, woken.append)
    with turns.turn((NS, "other")):
        reconcile_serving(api, NS, "fd", turns=turns)
    assert made(api)[-1] == ("apply", "deployments", "")
    assert ready(api)["reason"] != "ServicePending"
    assert woken == []


def test_a_ready_model_whose_service_was_deleted_tells_it_falls() -> None:
    api, woken = fresh(), list[Hashable]()
    reconcile_serving(api, NS, "fd")
    api.objects["deployments", "fd-v1"]["status"] = {
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
        ]
    }
    reconcile_serving(api, NS, "fd")
    assert ready(api)["status"] == "True"
    del api.objects["services", "fd"]
    turns = Turns(1, woken.append)
    with turns.turn((NS, "other")):
        reconcile_serving(api, NS, "fd", turns=turns)
    assert (ready(api)["status"], ready(api)["reason"]) == ("False", "ServicePending")
    assert events(api)[-1] == "ReadyFalse"
    reconcile_serving(api, NS, "fd", turns=turns)
    assert ready(api)["status"] == "True"
    assert events(api)[-2:] == ["Created", "ReadyTrue"]


def test_a_model_waiting_for_its_service_posts_no_ready_it_does_not_hold() -> None:
    api, woken = fresh(), list[Hashable]()
    turns = Turns(1, woken.append)
    with turns.turn((NS, "other")):
        reconcile_serving(api, NS, "fd", turns=turns)
        api.objects["deployments", "fd-v1"]["status"] = {
            "conditions": [{"type": "Available", "status": "True", "reason": "Available"}]
        }
        for _ in range(2):  # the Deployment came up while the Service waits
            reconcile_serving(api, NS, "fd", turns=turns)
    assert ready(api)["reason"] == "ServicePending"
    assert "ReadyTrue" not in events(api)
    reconcile_serving(api, NS, "fd", turns=turns)
    assert ready(api)["status"] == "True"
    assert events(api).count("ReadyTrue") == 1


def test_waiting_passes_write_nothing_while_the_deployment_comes_up() -> None:
    api, woken = fresh(), list[Hashable]()
    turns = Turns(1, woken.append)
    start = datetime(2026, 12, 5, 9, tzinfo=UTC)
    with turns.turn((NS, "other")):
        reconcile_serving(api, NS, "fd", now=start, turns=turns)
        written = ready(api)
        for later, (reason, status) in enumerate(
            (("NewReplicaSetAvailable", "False"), ("Available", "True")), start=1
        ):
            api.objects["deployments", "fd-v1"]["status"] = {
                "conditions": [{"type": "Available", "status": status, "reason": reason}]
            }
            before = len(api.writes)
            reconcile_serving(api, NS, "fd", now=start + timedelta(seconds=later), turns=turns)
            assert ("patch", "models", "status") not in api.writes[before:]
    assert ready(api) == written
