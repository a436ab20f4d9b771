"""The operator checks each IdentitySource against its real server and reports it in status conditions."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from kubeoidc_operator.source_check import check_source
from kubeoidc_operator.source_keeper import SourceKeeper
from kubeoidc_operator.source_status import source_status
from support.live import free_port
from support.slapd import READER_PASSWORD, Slapd

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_working_ldap_source_is_ready_because_the_service_bind_works(slapd: Slapd) -> None:
    outcome = check_source(slapd.spec(), slapd.secrets)

    status = source_status({"metadata": {"generation": 3}}, outcome, NOW)
    assert conditions(status) == {
        "SpecValid": ("True", "Valid"),
        "Reachable": ("True", "BindSucceeded"),
        "Ready": ("True", "BindSucceeded"),
    }
    assert status["observedGeneration"] == 3
    assert status["lastChecked"] == "2026-01-01T00:00:00Z"


def test_a_wrong_bind_password_is_reported_as_bind_failed(slapd: Slapd) -> None:
    def wrong(name: str, key: str) -> str | None:
        return "wrong password" if name == "ldap-reader" else slapd.secrets(name, key)

    outcome = check_source(slapd.spec(), wrong)

    assert conditions(source_status({}, outcome, NOW))["Ready"] == ("False", "BindFailed")
    assert "wrong password" not in outcome.message


def test_an_unreachable_discovery_url_is_reported_as_discovery_failed() -> None:
    spec = {
        "type": "OIDC",
        "oidc": {
            "issuer": f"http://127.0.0.1:{free_port()}",
            "clientID": "k",
            "clientSecretRef": {"name": "s"},
        },
    }

    outcome = check_source(spec, lambda name, key: "secret")

    assert conditions(source_status({}, outcome, NOW))["Ready"] == ("False", "DiscoveryFailed")


def test_a_missing_secret_makes_the_spec_invalid_and_nothing_is_checked(slapd: Slapd) -> None:
    outcome = check_source(slapd.spec(), lambda name, key: None)

    assert conditions(source_status({}, outcome, NOW)) == {
        "SpecValid": ("False", "InvalidSpec"),
        "Reachable": ("Unknown", "NotChecked"),
        "Ready": ("False", "InvalidSpec"),
    }


class RecordingApi:
    """The two calls the keeper makes, over a list of sources and Secrets held here."""

    def __init__(self, sources: list[dict[str, Any]], secrets: dict[str, dict[str, str]]) -> None:
        self.sources, self.secrets = sources, secrets
        self.patched: dict[str, dict[str, Any]] = {}

    def list_identity_sources(self, namespace: str) -> list[dict[str, Any]]:
        return self.sources

    def patch_identity_source_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.patched[name] = status

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        data = self.secrets.get(name)
        if data is None:
            return None
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_the_keeper_writes_each_sources_status(slapd: Slapd) -> None:
    api = RecordingApi(
        [
            {"metadata": {"name": "corp", "generation": 1}, "spec": slapd.spec()},
            {
                "metadata": {"name": "bad", "generation": 1},
                "spec": slapd.spec(bindPasswordRef={"name": "nope"}),
            },
        ],
        {"ldap-ca": {"ca.crt": slapd.ca_pem}, "ldap-reader": {"password": READER_PASSWORD}},
    )

    SourceKeeper(api, "kubeoidc", now=lambda: NOW).tick()  # type: ignore[arg-type]

    assert conditions(api.patched["corp"])["Ready"] == ("True", "BindSucceeded")
    assert conditions(api.patched["bad"])["SpecValid"] == ("False", "InvalidSpec")
