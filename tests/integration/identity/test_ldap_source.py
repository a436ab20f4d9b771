"""Signing in with an LDAP account (a real slapd over LDAPS with a test CA) through the login form."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from kubeoidc_provider.context import Provider
from kubeoidc_provider.identity.catalog import SourceCatalog
from support.certificates import CertificateAuthority
from support.provider import PASSWORD, register
from support.provider_flow import Browser, RelyingParty, bearer, code_of, location, page_text
from support.slapd import PASSWORDS, READER_PASSWORD, Slapd

WRONG = "The username or password is incorrect."
UNAVAILABLE = "Your password cannot be checked right now. Try again in a few minutes."
SCOPE = "openid profile email groups"


def id_token_claims(token: str) -> dict[str, Any]:
    """The ID token's payload (its signature is the token endpoint suite's business)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


@pytest.fixture
def rp(provider: Provider, http: Any) -> RelyingParty:
    client = register(provider.registry, "web-app", scopes=["openid", "profile", "email", "groups"])
    return RelyingParty(http, client)


def login_page(browser: Browser, rp: RelyingParty) -> Any:
    page = browser.get(location(browser.authorize(rp.auth_request(scope=SCOPE).params)))
    assert page.status_code == 200
    return page


def test_an_ldap_user_signs_in_and_their_groups_reach_the_id_token_and_userinfo(
    browser: Browser, rp: RelyingParty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request = rp.auth_request(scope=SCOPE)

    answer = browser.sign_in(request.params, username="ada", password=PASSWORDS["ada"])
    tokens = rp.exchange(request, code_of(answer)).json()

    claims = id_token_claims(tokens["id_token"])
    assert claims["sub"].startswith("corp|")
    assert claims["groups"] == ["admins", "engineers"]
    assert claims["preferred_username"] == "ada"
    assert claims["email"] == "ada@example.com"
    info = rp.http.get("/userinfo", headers=bearer(tokens["access_token"])).json()
    assert info["sub"] == claims["sub"]
    assert info["groups"] == ["admins", "engineers"]
    assert info["name"] == "Ada Lovelace"
    assert PASSWORDS["ada"] not in caplog.text
    assert READER_PASSWORD not in caplog.text


def test_ldap_attributes_become_the_profile_phone_and_address_claims(
    provider: Provider, browser: Browser, http: Any
) -> None:
    client = register(provider.registry, "claims-app", scopes=["openid", "profile", "phone", "address"])
    rp = RelyingParty(http, client)
    request = rp.auth_request(scope="openid profile phone address")

    answer = browser.sign_in(request.params, username="ada", password=PASSWORDS["ada"])
    tokens = rp.exchange(request, code_of(answer)).json()
    info = rp.http.get("/userinfo", headers=bearer(tokens["access_token"])).json()

    assert info["given_name"] == "Ada"
    assert info["family_name"] == "Lovelace"
    assert info["nickname"] == "Ada"
    assert info["website"] == "https://ada.example.com"
    assert info["locale"] == "en-GB"
    assert isinstance(info["updated_at"], int)
    assert info["updated_at"] > 1_700_000_000
    assert info["phone_number"] == "+44 20 7946 0018"
    assert info["phone_number_verified"] is True
    assert info["address"] == {
        "formatted": "12 St James's Square\nLondon",
        "street_address": "12 St James's Square",
        "locality": "London",
        "region": "Greater London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    }
    assert not {"given_name", "phone_number", "address"} & set(id_token_claims(tokens["id_token"]))


def test_claim_attributes_can_be_mapped_elsewhere_or_left_out(
    slapd: Slapd, sources: SourceCatalog, browser: Browser, rp: RelyingParty
) -> None:
    user_search = {
        "baseDN": "ou=people,dc=example,dc=com",
        "claimAttributes": {"givenName": "cn", "nickname": "", "address": {"formatted": ""}},
    }
    assert sources.apply("corp", slapd.spec(userSearch=user_search), slapd.secrets) is None
    request = rp.auth_request(scope=SCOPE)

    answer = browser.sign_in(request.params, username="ada", password=PASSWORDS["ada"])
    tokens = rp.exchange(request, code_of(answer)).json()
    info = rp.http.get("/userinfo", headers=bearer(tokens["access_token"])).json()

    assert info["given_name"] == "Ada Lovelace"
    assert info["family_name"] == "Lovelace"
    assert "nickname" not in info
    assert "address" not in info  # the address scope was not asked for


def test_the_same_person_gets_the_same_subject_at_every_sign_in(browser: Browser, rp: RelyingParty) -> None:
    subjects = set()
    for _ in range(2):
        with browser.elsewhere():
            request = rp.auth_request(scope=SCOPE)
            answer = browser.sign_in(request.params, username="grace", password=PASSWORDS["grace"])
            subjects.add(id_token_claims(rp.exchange(request, code_of(answer)).json()["id_token"])["sub"])
    assert len(subjects) == 1


def test_a_wrong_ldap_password_is_refused_like_any_wrong_password(browser: Browser, rp: RelyingParty) -> None:
    response = browser.login(login_page(browser, rp), "ada", "not ada's password")

    assert response.status_code == 401
    assert WRONG in page_text(response)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("nobody", "whatever-1", id="unknown user"),
        pytest.param("mallory", PASSWORDS["mallory"], id="disabled user with the right password"),
        pytest.param("*)(uid=*", PASSWORDS["ada"], id="filter injection closing the clause"),
        pytest.param("*", PASSWORDS["ada"], id="wildcard username"),
        pytest.param("ad*", PASSWORDS["ada"], id="prefix wildcard"),
        pytest.param("ada)(|(uid=*", PASSWORDS["ada"], id="filter injection opening an or"),
        pytest.param("ada\x00", PASSWORDS["ada"], id="NUL byte"),
        pytest.param("ada", "", id="empty password (an anonymous bind in LDAP)"),
    ],
)
def test_unknown_disabled_and_injected_usernames_sign_nobody_in(
    browser: Browser, rp: RelyingParty, username: str, password: str
) -> None:
    response = browser.login(login_page(browser, rp), username, password)

    assert response.status_code == 401
    assert WRONG in page_text(response)


def test_static_users_still_sign_in_beside_the_ldap_source(browser: Browser, rp: RelyingParty) -> None:
    response = browser.login(login_page(browser, rp), "alice", PASSWORD)

    assert response.status_code == 303
    assert "/authorize/resume" in location(response)


def test_a_client_that_allows_only_local_users_does_not_check_ldap(
    provider: Provider, http: Any, browser: Browser
) -> None:
    client = register(provider.registry, "local-only", identity_sources=["local"])
    rp = RelyingParty(http, client)

    response = browser.login(login_page(browser, rp), "ada", PASSWORDS["ada"])

    assert response.status_code == 401


def test_an_ldap_server_stopped_mid_run_gives_a_try_again_page_then_works_again(
    slapd: Slapd, browser: Browser, rp: RelyingParty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    page = login_page(browser, rp)
    slapd.stop()
    try:
        down = browser.login(page, "ada", PASSWORDS["ada"])
    finally:
        slapd.start()

    assert down.status_code == 503
    assert UNAVAILABLE in page_text(down)
    again = browser.login(login_page(browser, rp), "ada", PASSWORDS["ada"])
    assert again.status_code == 303
    assert PASSWORDS["ada"] not in caplog.text


def test_a_wrong_service_password_makes_the_source_unavailable_not_a_wrong_user_password(
    slapd: Slapd, sources: SourceCatalog, browser: Browser, rp: RelyingParty
) -> None:
    def wrong_reader(name: str, key: str) -> str | None:
        return "not the reader password" if name == "ldap-reader" else slapd.secrets(name, key)

    assert sources.apply("corp", slapd.spec(), wrong_reader) is None

    response = browser.login(login_page(browser, rp), "ada", PASSWORDS["ada"])

    assert response.status_code == 503


def test_an_untrusted_server_certificate_is_refused(
    slapd: Slapd, sources: SourceCatalog, browser: Browser, rp: RelyingParty
) -> None:
    foreign_pem = CertificateAuthority("kubeoidc test LDAP CA").pem.decode()  # the same name, another key

    def foreign(name: str, key: str) -> str | None:
        return foreign_pem if name == "ldap-ca" else slapd.secrets(name, key)

    assert sources.apply("corp", slapd.spec(), foreign) is None

    response = browser.login(login_page(browser, rp), "ada", PASSWORDS["ada"])

    assert response.status_code == 503


def test_starttls_on_the_plain_port_signs_in_like_ldaps(
    slapd: Slapd, sources: SourceCatalog, browser: Browser, rp: RelyingParty
) -> None:
    assert sources.apply("corp", slapd.spec(url=slapd.plain_url, startTLS=True), slapd.secrets) is None

    response = browser.login(login_page(browser, rp), "grace", PASSWORDS["grace"])

    assert response.status_code == 303


def test_plain_ldap_without_tls_is_refused_unless_asked_for_explicitly(
    slapd: Slapd, sources: SourceCatalog
) -> None:
    problem = sources.apply("corp", slapd.spec(url=slapd.plain_url), slapd.secrets)

    assert problem is not None
    assert "ldap:// without TLS" in problem
    assert "corp" not in sources.names()
