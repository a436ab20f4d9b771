"""The environment the chart gives each container is accepted by that role's own settings.

A misspelt variable or a value in the wrong form would only show when the pod starts; here each rendered
environment is loaded by the operator's and the provider's settings classes, as the container would.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import pytest

from kubeoidc_operator.settings import OperatorSettings, load_settings
from kubeoidc_provider.settings import ProviderSettings
from support.chart_rendering import VALUE_SETS, container_of, env_of, objects, pod_spec

#: What a Secret reference resolves to in a pod: any value of the right form.
FROM_SECRET = "rediss://:password@redis.example.com:6380/0"


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, Any], prefix: str) -> None:
    for name in [name for name in os.environ if name.startswith(prefix)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        assert name.startswith(prefix), name
        monkeypatch.setenv(name, value if isinstance(value, str) else FROM_SECRET)


def operator_settings(monkeypatch: pytest.MonkeyPatch, value_set: str) -> OperatorSettings:
    apply_env(monkeypatch, env_of(container_of(objects(value_set), "operator")), "KUBEOIDC_OPERATOR_")
    return load_settings()


def provider_settings(monkeypatch: pytest.MonkeyPatch, value_set: str) -> ProviderSettings:
    apply_env(monkeypatch, env_of(container_of(objects(value_set), "provider")), "KUBEOIDC_PROVIDER_")
    return ProviderSettings()  # type: ignore[call-arg]  # the issuer comes from the environment


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_operator_accepts_its_rendered_environment(monkeypatch: pytest.MonkeyPatch, value_set: str) -> None:
    settings = operator_settings(monkeypatch, value_set)

    assert settings.issuer == "https://login.example.com"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_provider_accepts_its_rendered_environment(monkeypatch: pytest.MonkeyPatch, value_set: str) -> None:
    settings = provider_settings(monkeypatch, value_set)

    assert settings.issuer == "https://login.example.com"


def test_default_operator_keeps_the_keys_alone_on_the_default_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = operator_settings(monkeypatch, "default")

    assert settings.peering == ""
    assert settings.signing_keys_secret == "auth/kubeoidc-signing-keys"
    assert settings.key_alg == "RS256"
    assert settings.key_rotation_period == datetime.timedelta(days=30)
    assert settings.key_publish_ahead == datetime.timedelta(days=1)
    assert settings.key_retire_after == datetime.timedelta(days=1)


def test_operators_in_failover_peer_with_a_priority_drawn_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = operator_settings(monkeypatch, "all")

    assert settings.peering == "platform-oidc"
    assert settings.peering_lifetime == 30
    assert settings.priority is None
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.key_alg == "ES256"
    assert settings.key_rotation_period == datetime.timedelta(days=90)


def test_hand_made_keys_leave_the_operator_without_a_keys_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert operator_settings(monkeypatch, "ha").signing_keys_secret == ""


def test_default_provider_stores_in_sqlite_and_follows_the_managed_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = provider_settings(monkeypatch, "default")

    assert settings.storage_url == "sqlite:////var/lib/kubeoidc/state.db"
    assert settings.signing_keys_secret == "auth/kubeoidc-signing-keys"
    assert settings.signing_keys_file is None
    assert settings.forwarded_allow_ips == "127.0.0.1"
    assert settings.host == "0.0.0.0"


def test_providers_share_a_redis_and_read_hand_made_keys_from_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = provider_settings(monkeypatch, "ha")

    assert settings.storage_url == FROM_SECRET
    assert settings.signing_keys_secret is None
    assert str(settings.signing_keys_file) == "/etc/kubeoidc/signing-keys/jwks.json"


def test_provider_with_a_tls_secret_serves_https_from_it_and_probes_over_https(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = provider_settings(monkeypatch, "all")
    assert str(settings.tls_cert_file) == "/etc/kubeoidc/tls/tls.crt"
    assert str(settings.tls_key_file) == "/etc/kubeoidc/tls/tls.key"
    objs = objects("all")
    container = container_of(objs, "provider")
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert mount == {"name": "tls", "mountPath": "/etc/kubeoidc/tls", "readOnly": True}
    volume = next(v for v in pod_spec(objs, "provider")["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "kubeoidc-provider-tls"


def test_default_provider_serves_plain_http_for_a_tls_terminating_ingress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = provider_settings(monkeypatch, "default")
    assert settings.tls_cert_file is None
    assert "scheme" not in container_of(objects("default"), "provider")["readinessProbe"]["httpGet"]
