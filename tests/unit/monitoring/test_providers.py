"""The operator's provider configuration: the example file, env fallback, errors; a
provider that cannot be asked says why instead of raising."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from modelloop.monitoring.providers import Credentials, ProviderConfig, load_providers
from modelloop.monitoring.readings import Answer
from modelloop.monitoring.source import PrometheusSource
from modelloop.monitoring.telemetry import Telemetry

EXAMPLE = Path(__file__).parents[3] / "examples" / "operator" / "providers.yaml"


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


def source(tmp_path: Path, credentials: Credentials | None = None) -> PrometheusSource:
    config = ProviderConfig.model_validate(
        {"name": "central", "url": "https://127.0.0.1:1", "tls": {"caFile": str(tmp_path / "ca")}}
    )
    return PrometheusSource(config, credentials or Credentials(), Telemetry())


def test_an_unreadable_ca_file_is_the_providers_fault_not_a_crash(tmp_path: Path) -> None:
    unusable = source(tmp_path)
    problem = f"provider central: tls.caFile {tmp_path / 'ca'} cannot be read: "
    assert unusable.problem() == problem + "No such file or directory"
    assert unusable.query("up") == Answer(error=problem + "No such file or directory")
    (tmp_path / "ca").mkdir()
    assert unusable.problem() == problem + "Is a directory"


def test_a_ca_file_mounted_late_is_used(tmp_path: Path) -> None:
    late = source(tmp_path)
    (tmp_path / "ca").write_text("-----BEGIN CERTIFICATE-----\n")
    assert late.problem() is None


def test_missing_credentials_come_first(tmp_path: Path) -> None:
    missing = source(tmp_path, Credentials(error="provider central: Secret x/y not found"))
    assert missing.problem() == "provider central: Secret x/y not found"
