"""Signing in through an upstream OpenID Provider (npm ``oidc-provider``), the whole chain in Chromium.

An application (npm ``openid-client``) sends Chromium to kubeoidc; kubeoidc's login page offers the
upstream; the upstream's own login and consent pages sign the person in; kubeoidc checks the upstream's
ID token and issues its own, with the person's groups. Then the browser replays the upstream's answer,
forges a ``state``, and tries an upstream that is down: each ends on a clear kubeoidc error page.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest

import kubeoidc_contract as contract
from kubeoidc_provider.context import Provider
from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.identity.subjects import source_subject
from kubeoidc_provider.storage.memory import MemoryStorage
from support.live import free_port, serve
from support.node_rp import NODE_DIR, chromium, node, relying_party
from support.provider import make_provider, pkce_pair, register
from support.provider_flow import hidden

__all__ = ["chromium", "node", "relying_party"]

pytestmark = [pytest.mark.node, pytest.mark.browser]

UPSTREAM_CLIENT_ID = "kubeoidc-login"
UPSTREAM_SECRET = "upstream-client-secret-4b1d"
CLIENT_ORIGIN = "https://app.example.test"


@pytest.fixture(scope="module")
def kubeoidc_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def upstream(node: str, kubeoidc_port: int) -> Iterator[str]:
    """The upstream OpenID Provider on its own port; yields its issuer."""
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{kubeoidc_port}{contract.UPSTREAM_CALLBACK_PATH}"
    with subprocess.Popen(
        [
            node,
            str(NODE_DIR / "upstream-op.mjs"),
            str(port),
            UPSTREAM_CLIENT_ID,
            UPSTREAM_SECRET,
            redirect_uri,
        ],
        cwd=NODE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", "the upstream OpenID Provider did not start"
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def kubeoidc(upstream: str, kubeoidc_port: int) -> Iterator[Provider]:
    issuer = f"http://127.0.0.1:{kubeoidc_port}"
    sources = SourceCatalog(issuer + contract.UPSTREAM_CALLBACK_PATH)
    secrets = {("corp-sso", "clientSecret"): UPSTREAM_SECRET}.get
    for name, upstream_issuer in (("corp-sso", upstream), ("offline", f"http://127.0.0.1:{free_port()}")):
        spec = {
            "type": "OIDC",
            "displayName": "Corp SSO" if name == "corp-sso" else "Offline IdP",
            "oidc": {
                "issuer": upstream_issuer,
                "clientID": UPSTREAM_CLIENT_ID,
                "clientSecretRef": {"name": "corp-sso"},
                "scopes": ["openid", "profile", "email", "groups", "phone", "address"],
            },
        }
        assert sources.apply(name, spec, lambda secret, key: secrets((secret, key))) is None
    provider = make_provider(issuer=issuer, alg="ES256", storage=MemoryStorage(), sources=sources)
    with serve(provider, kubeoidc_port):
        yield provider


class Recorder(logging.Handler):
    """Every log line of the run, to check that none carries a secret."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def log_lines() -> Iterator[list[str]]:
    recorder, root = Recorder(), logging.getLogger()
    level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    try:
        yield recorder.lines
    finally:
        root.removeHandler(recorder)
        root.setLevel(level)


@pytest.fixture(scope="module")
def signed_in(
    kubeoidc: Provider,
    upstream: str,
    relying_party: Callable[..., dict[str, Any]],
    chromium: str,
    log_lines: list[str],
) -> dict[str, Any]:
    """One run of the whole chain in Chromium, shared by the assertions below."""
    app = register(
        kubeoidc.registry,
        "dashboard",
        redirect_uris=[f"{CLIENT_ORIGIN}/callback"],
        scopes=["openid", "profile", "email", "groups", "phone", "address"],
    )
    return relying_party(
        "signin",
        {
            "chromium": chromium,
            "clientOrigin": CLIENT_ORIGIN,
            "issuer": kubeoidc.settings.issuer,
            "clientId": app.client_id,
            "clientSecret": app.secret,
            "redirectUri": app.redirect_uri,
            "scope": "openid profile email groups phone address",
            "upstreamIssuer": upstream,
            "source": "corp-sso",
            "upstreamLogin": "dana",
            "downSource": "offline",
        },
        script=NODE_DIR / "upstream-signin.mjs",
    )


def test_the_login_page_offers_each_upstream_and_the_password_form(signed_in: dict[str, Any]) -> None:
    page = signed_in["loginPage"]
    assert page["buttons"] == ["Sign in with Corp SSO", "Sign in with Offline IdP"]
    assert page["passwordForm"] is True
    assert "Dashboard" in page["text"]


def test_a_person_signs_in_through_the_upstream_and_the_app_gets_their_mapped_claims_and_groups(
    signed_in: dict[str, Any], upstream: str, kubeoidc: Provider
) -> None:
    claims = signed_in["idToken"]
    assert claims["sub"] == source_subject("corp-sso", f"{upstream}\x00dana")
    assert claims["preferred_username"] == "dana"
    assert claims["email"] == "dana@corp.example"
    assert claims["email_verified"] is True
    assert claims["groups"] == ["platform", "developers"]
    assert signed_in["userinfo"]["groups"] == ["platform", "developers"]
    assert signed_in["userinfo"]["sub"] == claims["sub"]
    # The upstream's development pages load web fonts the offline browser cannot reach: only
    # kubeoidc's own pages are held to a clean console.
    ours = [problem for problem in signed_in["browserProblems"] if kubeoidc.settings.issuer in problem]
    assert ours == []


def test_the_upstreams_standard_profile_phone_and_address_claims_pass_through_to_userinfo(
    signed_in: dict[str, Any],
) -> None:
    info = signed_in["userinfo"]
    assert info["given_name"] == "dana"
    assert info["family_name"] == "Upstream"
    assert info["locale"] == "de-CH"
    assert info["zoneinfo"] == "Europe/Zurich"
    assert info["picture"] == "https://people.corp.example/dana.png"
    assert info["updated_at"] == 1767225600
    assert info["phone_number"] == "+41 44 668 18 00"
    assert info["phone_number_verified"] is True
    assert info["address"] == {
        "street_address": "Bahnhofstrasse 1",
        "locality": "Zurich",
        "postal_code": "8001",
        "country": "CH",
    }
    # Beside an access token, the ID token leaves them to userinfo (OIDC Core §5.4).
    assert not {"given_name", "phone_number", "address"} & set(signed_in["idToken"])


def test_a_replayed_upstream_callback_is_an_error_page(signed_in: dict[str, Any]) -> None:
    replay = signed_in["replay"]
    assert replay["status"] == 400
    assert "does not belong to a sign-in in progress" in replay["text"]


def test_a_forged_state_is_an_error_page(signed_in: dict[str, Any]) -> None:
    forged = signed_in["forged"]
    assert forged["status"] == 400
    assert "does not belong to a sign-in in progress" in forged["text"]


def test_an_upstream_that_is_down_is_an_error_page_not_a_500(signed_in: dict[str, Any]) -> None:
    down = signed_in["down"]
    assert down["status"] == 503
    assert "Offline IdP cannot be reached right now" in down["text"]


def authorize_params(client_id: str, redirect_uri: str, challenge: str, **extra: str) -> dict[str, str]:
    """An authorization request's query for the ``openid`` scope with an S256 PKCE challenge."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def test_a_client_whose_first_source_is_an_upstream_goes_straight_there_with_the_login_hint(
    kubeoidc: Provider, upstream: str
) -> None:
    app = register(
        kubeoidc.registry, "straight", redirect_uris=[f"{CLIENT_ORIGIN}/cb"], identity_sources=["corp-sso"]
    )
    verifier, challenge = pkce_pair()
    params = authorize_params(app.client_id, app.redirect_uri, challenge, login_hint="dana@corp.example")
    with httpx.Client(base_url=kubeoidc.settings.issuer, timeout=10) as browser:
        login = browser.get("/authorize", params=params)
        upstream_redirect = browser.get(login.headers["location"])

    assert upstream_redirect.status_code == 303
    target = httpx.URL(upstream_redirect.headers["location"])
    assert str(target).startswith(upstream)
    assert target.params["login_hint"] == "dana@corp.example"
    assert target.params["code_challenge_method"] == "S256"
    assert target.params["client_id"] == UPSTREAM_CLIENT_ID
    assert verifier not in str(target)


def test_a_source_the_client_does_not_allow_cannot_be_used_through_its_button(kubeoidc: Provider) -> None:
    app = register(
        kubeoidc.registry, "only-local", redirect_uris=[f"{CLIENT_ORIGIN}/cb"], identity_sources=["local"]
    )
    _, challenge = pkce_pair()
    params = authorize_params(app.client_id, app.redirect_uri, challenge)
    with httpx.Client(base_url=kubeoidc.settings.issuer, timeout=10) as browser:
        page = browser.get(browser.get("/authorize", params=params).headers["location"])
        assert "Sign in with" not in page.text
        form = {
            "interaction": hidden(page.text, "interaction"),
            "csrf_token": hidden(page.text, "csrf_token"),
        }
        refused = browser.post("/login/upstream", data={**form, "source": "corp-sso"})

    assert refused.status_code == 400
    assert "Unknown sign-in option" in refused.text


def test_nothing_secret_reaches_the_log(signed_in: dict[str, Any], log_lines: list[str]) -> None:
    text = "\n".join(log_lines)
    assert "upstream" in text  # the run did log (the failed sign-ins below)
    assert UPSTREAM_SECRET not in text
    assert "code=" not in text
    assert "id_token" not in text
