"""IdentitySources on a real API server: the CRD's rules, and the operator's status conditions for
working and broken sources (a real slapd; a discovery URL nobody answers), written as its own
ServiceAccount with the chart's RBAC.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from kubernetes.client.exceptions import ApiException

import kubeoidc_contract as contract
from support.admin import Admin, condition, oidcclient, ready_credentials
from support.live import free_port
from support.provider import pkce_pair
from support.provider_flow import hidden, location, redirect_params
from support.release import NAMESPACE, Release, RoleProcess, eventually
from support.slapd import PASSWORDS, READER_PASSWORD, Slapd, require_slapd

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    require_slapd()
    server = Slapd(Path(tmp_path_factory.mktemp("slapd")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def create_source(admin: Admin, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": contract.API_VERSION,
        "kind": contract.IDENTITY_SOURCE_KIND,
        "metadata": {"name": name},
    }
    admin.custom.create_namespaced_custom_object(
        contract.GROUP,
        contract.VERSION,
        NAMESPACE,
        contract.IDENTITY_SOURCE_PLURAL,
        {**body, "spec": spec},
        field_validation="Strict",
        _preload_content=False,
    )


def source(admin: Admin, name: str) -> dict[str, Any]:
    response: Any = admin.custom.get_namespaced_custom_object(
        contract.GROUP,
        contract.VERSION,
        NAMESPACE,
        contract.IDENTITY_SOURCE_PLURAL,
        name,
        _preload_content=False,
    )
    found: dict[str, Any] = json.loads(response.data)
    return found


def secret(name: str, **values: str) -> dict[str, Any]:
    data = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}


def checked(admin: Admin, name: str) -> dict[str, Any]:
    """The source once the operator has written its Ready condition."""

    def check() -> dict[str, Any] | None:
        found = source(admin, name)
        return found if condition(found).get("reason") else None

    result: dict[str, Any] = eventually(check, f"the operator to check IdentitySource {name}", timeout=60)
    return result


@pytest.fixture(scope="module")
def sources(release: Release, admin: Admin, slapd: Slapd) -> Iterator[list[str]]:
    admin.create_secret(NAMESPACE, secret("ldap-ca", **{"ca.crt": slapd.ca_pem}))
    admin.create_secret(NAMESPACE, secret("ldap-reader", password=READER_PASSWORD))
    admin.create_secret(NAMESPACE, secret("ldap-wrong", password="not the reader's password"))
    admin.create_secret(NAMESPACE, secret("sso", clientSecret="upstream-secret"))
    create_source(admin, "ldap-good", slapd.spec())
    create_source(admin, "ldap-bad-password", slapd.spec(bindPasswordRef={"name": "ldap-wrong"}))
    sso = {
        "issuer": f"http://127.0.0.1:{free_port()}",
        "clientID": "kubeoidc",
        "clientSecretRef": {"name": "sso"},
    }
    create_source(admin, "sso-bad-url", {"type": "OIDC", "oidc": sso})
    names = ["ldap-good", "ldap-bad-password", "sso-bad-url"]
    yield names
    # The release's provider is shared by the session: other modules' login pages stay as they were.
    for name in names:
        admin.custom.delete_namespaced_custom_object(
            contract.GROUP,
            contract.VERSION,
            NAMESPACE,
            contract.IDENTITY_SOURCE_PLURAL,
            name,
            _preload_content=False,
        )


@pytest.fixture(scope="module")
def checked_sources(
    sources: list[str], shared_operator: RoleProcess, admin: Admin
) -> dict[str, dict[str, Any]]:
    # The operator checks the sources at start, then every minute: a restart checks them now.
    shared_operator.restart()
    return {name: checked(admin, name) for name in sources}


def test_a_working_ldap_source_is_ready(checked_sources: dict[str, dict[str, Any]]) -> None:
    ready = condition(checked_sources["ldap-good"])
    assert (ready["status"], ready["reason"]) == ("True", "BindSucceeded")
    assert checked_sources["ldap-good"]["status"]["lastChecked"]


def test_a_bad_bind_password_is_reported(checked_sources: dict[str, dict[str, Any]]) -> None:
    found = checked_sources["ldap-bad-password"]
    assert (condition(found)["status"], condition(found)["reason"]) == ("False", "BindFailed")
    assert condition(found, contract.SPEC_VALID_CONDITION)["status"] == "True"
    assert "not the reader's password" not in str(found)


def test_a_bad_discovery_url_is_reported(checked_sources: dict[str, dict[str, Any]]) -> None:
    found = checked_sources["sso-bad-url"]
    assert (condition(found)["status"], condition(found)["reason"]) == ("False", "DiscoveryFailed")
    reachable = condition(found, contract.REACHABLE_CONDITION)
    assert reachable["status"] == "False"
    assert "did not answer" in reachable["message"]


def test_the_api_server_refuses_a_source_without_its_section(release: Release, admin: Admin) -> None:
    with pytest.raises(ApiException) as refused:
        create_source(admin, "half", {"type": "OIDC"})

    assert refused.value.status == 422
    assert "type OIDC needs the oidc section" in str(refused.value.body)


def test_the_api_server_fills_in_the_claim_attributes_and_refuses_one_that_is_no_attribute_name(
    release: Release, admin: Admin
) -> None:
    user_search: dict[str, Any] = {"baseDN": "ou=people,dc=example,dc=com"}
    ldap: dict[str, Any] = {"url": "ldaps://ldap.example.com", "userSearch": user_search}
    create_source(admin, "claims-defaults", {"type": "LDAP", "ldap": ldap})
    stored = source(admin, "claims-defaults")["spec"]["ldap"]["userSearch"]["claimAttributes"]
    bad = {**ldap, "userSearch": {**user_search, "claimAttributes": {"locale": "(uid=*)"}}}

    with pytest.raises(ApiException) as refused:
        create_source(admin, "claims-bad", {"type": "LDAP", "ldap": bad})

    assert (stored["familyName"], stored["phoneNumber"], stored["middleName"]) == (
        "sn",
        "telephoneNumber",
        "",
    )
    assert stored["address"]["locality"] == "l"
    assert refused.value.status == 422
    assert "spec.ldap.userSearch.claimAttributes.locale" in str(refused.value.body)


def test_the_provider_learns_an_ldap_source_from_the_cluster_and_its_people_sign_in_with_groups(
    checked_sources: dict[str, dict[str, Any]],
    provider: RoleProcess,
    admin: Admin,
    namespace: str,
    release: Release,
) -> None:
    spec = {
        "displayName": "Ops console",
        "redirectURIs": ["https://ops.example.test/callback"],
        "scopes": ["openid", "profile", "groups"],
        "identitySources": ["ldap-good"],
    }
    admin.create_client(namespace, oidcclient("ops", spec))
    credentials = ready_credentials(admin, namespace, "ops")
    client_id, secret_value = credentials[contract.CLIENT_ID_KEY], credentials[contract.CLIENT_SECRET_KEY]
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": spec["redirectURIs"][0],
        "scope": "openid profile groups",
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with httpx2.Client(base_url=release.issuer, timeout=10) as browser:
        first = eventually(
            lambda: (r := browser.get("/authorize", params=params)).status_code == 303 and r,
            "the provider to serve the new client",
        )
        page = browser.get(location(first))
        assert "Password" in page.text
        form = {
            "interaction": hidden(page.text, "interaction"),
            "csrf_token": hidden(page.text, "csrf_token"),
        }
        signed_in = eventually(
            lambda: (
                (
                    r := browser.post(
                        "/login", data={**form, "username": "ada", "password": PASSWORDS["ada"]}
                    )
                ).status_code
                == 303
                and r
            ),
            "the provider to learn the LDAP source from its watch",
        )
        consent_page = browser.get(location(browser.get(location(signed_in))))
        answer = browser.post(
            "/consent",
            data={
                "interaction": hidden(consent_page.text, "interaction"),
                "csrf_token": hidden(consent_page.text, "csrf_token"),
                "decision": "allow",
            },
        )
        code = redirect_params(browser.get(location(answer)) if "/authorize" in location(answer) else answer)[
            "code"
        ]
        tokens = httpx2.post(
            f"{release.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": spec["redirectURIs"][0],
                "code_verifier": verifier,
            },
            auth=(client_id, secret_value),
            timeout=10,
        ).json()
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"].startswith("ldap-good|")
    assert claims["groups"] == ["admins", "engineers"]
    assert claims["preferred_username"] == "ada"
