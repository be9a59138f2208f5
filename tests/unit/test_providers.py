"""The operator's provider configuration: the example file, env fallback, errors."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from modelloop.monitoring.providers import load_providers

EXAMPLE = Path(__file__).parents[2] / "examples" / "operator" / "providers.yaml"


def test_the_example_configuration_loads() -> None:
    providers = load_providers(str(EXAMPLE))
    assert [p.name for p in providers] == ["default", "central"]
    central = providers[1]
    assert central.bearer_token is not None
    assert (central.bearer_token.secret, central.tls.ca_file) == (
        "thanos-token",
        "/etc/modelloop/thanos-ca.crt",
    )


def test_without_a_file_the_environment_defines_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELLOOP_PROVIDERS", raising=False)
    monkeypatch.setenv("MODELLOOP_PROMETHEUS_URL", "http://prom:9090")
    [provider] = load_providers(None)
    assert (provider.name, provider.url, provider.timeout) == ("default", "http://prom:9090", "10s")
    monkeypatch.delenv("MODELLOOP_PROMETHEUS_URL")
    assert load_providers(None) == []


def test_a_mistyped_field_fails_at_start_up(tmp_path: Path) -> None:
    config = tmp_path / "providers.yaml"
    config.write_text("providers:\n  - name: default\n    url: http://p\n    timout: 5s\n")
    with pytest.raises(ValidationError, match="timout"):
        load_providers(str(config))
