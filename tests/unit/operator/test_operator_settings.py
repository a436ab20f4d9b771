"""The operator's settings come from KUBEOIDC_OPERATOR_* and fail at start with a clear message."""

from __future__ import annotations

import datetime

import pytest

from kubeoidc_operator.settings import OperatorSettings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ISSUER",
        "NAMESPACES",
        "RESYNC_INTERVAL",
        "LIVENESS_PORT",
        "PEERING",
        "PRIORITY",
        "PEERING_LIFETIME",
    ):
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
    assert settings.peering == ""
    assert settings.priority is None
    assert settings.peering_lifetime == 60


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
    settings = OperatorSettings(issuer="https://login.example.com", namespaces=("a",))
    assert settings.namespaces == ("a",)


def test_peering_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_PEERING", "kubeoidc")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_PRIORITY", "-5")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_PEERING_LIFETIME", "15")
    settings = load_settings(issuer="https://login.example.com")
    assert (settings.peering, settings.priority, settings.peering_lifetime) == ("kubeoidc", -5, 15)


def test_an_empty_priority_means_one_drawn_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_PRIORITY", "")
    assert load_settings(issuer="https://login.example.com").priority is None


@pytest.mark.parametrize("name", ["Kubeoidc", "kube_oidc", "-kubeoidc", "kubeoidc-", "a" * 254, "a..b"])
def test_a_peering_name_must_be_an_object_name(name: str) -> None:
    with pytest.raises(SettingsError, match=r"KUBEOIDC_OPERATOR_PEERING: .*ClusterKopfPeering"):
        load_settings(issuer="https://login.example.com", peering=name)


@pytest.mark.parametrize("name", ["kubeoidc", "kubeoidc.example.com", "op-1"])
def test_a_peering_name_may_be_a_dns_subdomain(name: str) -> None:
    assert load_settings(issuer="https://login.example.com", peering=name).peering == name


@pytest.mark.parametrize(("field", "value"), [("priority", "high"), ("peering_lifetime", 2)])
def test_bad_peering_numbers_are_refused(field: str, value: object) -> None:
    with pytest.raises(SettingsError, match=f"KUBEOIDC_OPERATOR_{field.upper()}"):
        load_settings(issuer="https://login.example.com", **{field: value})


def test_key_rotation_durations_read_as_kubernetes_users_write_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_ISSUER", "https://login.example.com")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_SIGNING_KEYS_SECRET", "kubeoidc/signing-keys")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_KEY_ROTATION_PERIOD", "90d")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_KEY_PUBLISH_AHEAD", "36h")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_KEY_RETIRE_AFTER", "1h30m")

    settings = load_settings()

    assert settings.signing_keys_secret == "kubeoidc/signing-keys"
    assert settings.key_rotation_period == datetime.timedelta(days=90)
    assert settings.key_publish_ahead == datetime.timedelta(hours=36)
    assert settings.key_retire_after == datetime.timedelta(minutes=90)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KEY_PUBLISH_AHEAD", "31d", "KUBEOIDC_OPERATOR_KEY_PUBLISH_AHEAD must be shorter than"),
        ("SIGNING_KEYS_SECRET", "just-a-name", "KUBEOIDC_OPERATOR_SIGNING_KEYS_SECRET: Value error, must be"),
        ("KEY_ALG", "HS256", "KUBEOIDC_OPERATOR_KEY_ALG"),
    ],
)
def test_a_bad_key_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_ISSUER", "https://login.example.com")
    monkeypatch.setenv(f"KUBEOIDC_OPERATOR_{variable}", value)

    with pytest.raises(SettingsError, match=message):
        load_settings()
