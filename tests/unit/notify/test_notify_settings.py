"""The operator's notification settings file."""

import json
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import ValidationError

from modelloop.api.model import ModelSpec, NotificationEvent, NotificationReceiver
from modelloop.notify.settings import NotificationSettings, load_settings


def test_no_file_means_no_receivers_and_the_default_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MODELLOOP_NOTIFICATIONS", raising=False)
    settings = load_settings(None)
    assert settings.receivers == []
    assert (settings.timeout, settings.attempts, settings.backoff) == ("5s", 3, "1s")
    assert (settings.queue_size, settings.workers) == (100, 4)


def test_the_file_as_the_chart_writes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notifications.yaml"
    path.write_text(
        "receivers:\n"
        "- name: platform\n"
        "  type: slack\n"
        "  urlFrom: {secretKeyRef: {name: platform-slack, key: url}}\n"
        "  events: [breach, rolledBack]\n"
        "timeout: 2s\n"
        "attempts: 2\n"
        "backoff: 500ms\n"
        "queueSize: 10\n"
        "workers: 2\n"
    )
    monkeypatch.setenv("MODELLOOP_NOTIFICATIONS", str(path))
    settings = load_settings(None)
    [receiver] = settings.receivers
    assert (receiver.name, receiver.type, receiver.events) == (
        "platform",
        "slack",
        ["breach", "rolledBack"],
    )
    assert settings.timeout.delta.total_seconds() == 2
    assert settings.backoff.delta.total_seconds() == 0.5
    assert (settings.attempts, settings.queue_size, settings.workers) == (2, 10, 2)


@pytest.mark.parametrize(
    "settings",
    [
        {"timeout": "0s"},
        {"attempts": 0},
        {"queueSize": 0},
        {
            "receivers": [
                {
                    "name": "a",
                    "type": "email",
                    "urlFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                }
            ]
        },
        {"url": "http://somewhere"},  # unknown fields are errors, not ignored
    ],
)
def test_a_broken_file_is_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NotificationSettings.model_validate(settings)


CHART = Path(__file__).parents[3] / "charts" / "modelloop"


def test_the_charts_values_and_schema_agree_with_the_operator() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert NotificationSettings.model_validate(values["notifications"]) == NotificationSettings()
    schema = json.loads((CHART / "values.schema.json").read_text())
    receiver = schema["definitions"]["notificationReceiver"]["properties"]
    assert receiver["events"]["items"]["enum"] == list(get_args(NotificationEvent))
    assert receiver["type"]["enum"] == list(
        get_args(NotificationReceiver.model_fields["type"].annotation)
    )


EXAMPLES = Path(__file__).parents[3] / "examples"


def test_the_examples_are_a_settings_file_and_a_patch_the_quickstart_model_takes() -> None:
    load_settings(str(EXAMPLES / "operator" / "notifications.yaml"))
    model = yaml.safe_load((EXAMPLES / "fraud-detector.yaml").read_text())
    patch = yaml.safe_load(
        (EXAMPLES / "notifications" / "fraud-detector-notifications.yaml").read_text()
    )
    spec = ModelSpec.model_validate(model["spec"] | patch["spec"])
    assert [(r.name, r.type) for r in spec.notifications] == [
        ("fraud-team", "slack"),
        ("audit", "webhook"),
    ]
    secrets = [
        d["metadata"]["name"]
        for d in yaml.safe_load_all((EXAMPLES / "notifications" / "secrets.yaml").read_text())
    ]
    assert sorted(r.url_from.secret_key_ref.name for r in spec.notifications) == sorted(secrets)
