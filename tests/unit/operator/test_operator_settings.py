"""The operator's settings come from KUBEOIDC_OPERATOR_* and fail at start with a clear message."""

from __future__ import annotations

import pytest

from kubeoidc_operator.settings import OperatorSettings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ISSUER", "NAMESPACES", "RESYNC_INTERVAL", "LIVENESS_PORT"):
        monkeypatch.delenv(f"KUBEOIDC_OPERATOR_{name}", raising=False)


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_ISSUER", "https://login.example.com")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_NAMESPACES", "apps, team-b,,")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_RESYNC_INTERVAL", "60")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_LIVENESS_PORT", "9000")
    settings = load_settings()
    assert settings.issuer == "https://login.example.com"
    assert settings.namespaces == ("apps", "team-b")
    assert settings.resync_interval == 60
    assert settings.liveness_port == 9000


def test_defaults_watch_every_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_ISSUER", "http://127.0.0.1:8080")
    settings = load_settings()
    assert settings.namespaces == ()
    assert settings.resync_interval == 300
    assert settings.liveness_port == 8081


def test_empty_namespaces_mean_every_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_NAMESPACES", "")
    assert load_settings(issuer="https://login.example.com").namespaces == ()


def test_missing_issuer_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"KUBEOIDC_OPERATOR_ISSUER is required: the issuer URL"):
        load_settings()


@pytest.mark.parametrize(
    "issuer", ["login.example.com", "ftp://x.example.com", "https://x.example.com/?a=b", "https://"]
)
def test_issuer_must_be_an_http_url_without_query(issuer: str) -> None:
    with pytest.raises(SettingsError, match="KUBEOIDC_OPERATOR_ISSUER"):
        load_settings(issuer=issuer)


def test_issuer_is_kept_exactly_as_given() -> None:
    assert load_settings(issuer="https://x.example.com").issuer == "https://x.example.com"
    assert load_settings(issuer="https://x.example.com/realm/").issuer == "https://x.example.com/realm/"


@pytest.mark.parametrize(("field", "value"), [("resync_interval", 0), ("liveness_port", 0)])
def test_out_of_range_numbers_are_refused(field: str, value: int) -> None:
    with pytest.raises(SettingsError, match=f"KUBEOIDC_OPERATOR_{field.upper()}"):
        load_settings(issuer="https://login.example.com", **{field: value})


def test_settings_can_be_built_directly_in_tests() -> None:
    settings = OperatorSettings(issuer="https://login.example.com", namespaces=["a"])
    assert settings.namespaces == ("a",)
