"""The Device Authorization Grant (RFC 8628) as a device and a person's browser see it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_contract import DEVICE_CODE_GRANT_TYPE
from kubeoidc_provider.context import Provider
from kubeoidc_provider.device_codes import USER_CODE_ALPHABET, normalize_user_code
from support.provider import RegisteredClient, register
from support.provider_flow import Browser, hidden, location, page_text


@pytest.fixture
def provider(make_provider: Callable[..., Provider]) -> Provider:
    return make_provider(device_poll_interval=1, login_attempts=2)


@pytest.fixture
def cli(provider: Provider) -> RegisteredClient:
    """A public command-line client that may use the device grant."""
    return register(
        provider.registry,
        "cli",
        public=True,
        redirect_uris=[],
        grant_types=[DEVICE_CODE_GRANT_TYPE, "refresh_token"],
        id_token_claims=["email", "email_verified", "groups"],
    )


class Device:
    def __init__(self, http: TestClient, client_id: str) -> None:
        self.http = http
        self.client_id = client_id

    def start(self, scope: str = "openid email groups offline_access") -> dict[str, Any]:
        response = self.http.post("/device_authorization", data={"client_id": self.client_id, "scope": scope})
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body: dict[str, Any] = response.json()
        return body

    def poll(self, device_code: str) -> tuple[int, dict[str, Any]]:
        response = self.http.post(
            "/token",
            data={
                "grant_type": DEVICE_CODE_GRANT_TYPE,
                "device_code": device_code,
                "client_id": self.client_id,
            },
        )
        return response.status_code, response.json()


@pytest.fixture
def device(http: TestClient, cli: RegisteredClient) -> Device:
    return Device(http, cli.client_id)


def approve(browser: Browser, verification_uri_complete: str, decision: str = "allow") -> str:
    """What a person does with the link: confirm the code, sign in, consent; the final page's text."""
    page = browser.get(verification_uri_complete)
    assert page.status_code == 200
    response = browser.http.post(
        "/device",
        data={"csrf_token": hidden(page.text, "csrf_token"), "user_code": hidden_code(page.text)},
        follow_redirects=False,
    )
    final = browser.finish(response, decision=decision)
    while final.status_code in (302, 303):
        final = browser.get(location(final))
    return page_text(final)


def hidden_code(html: str) -> str:
    marker = 'name="user_code"'
    tail = html[html.index(marker) :]
    return tail.split('value="', 1)[1].split('"', 1)[0]


def test_discovery_names_the_device_authorization_endpoint(http: TestClient, provider: Provider) -> None:
    document = http.get("/.well-known/openid-configuration").json()
    assert document["device_authorization_endpoint"] == f"{provider.settings.issuer}/device_authorization"
    assert DEVICE_CODE_GRANT_TYPE in document["grant_types_supported"]


def test_device_gets_codes_easy_to_type(device: Device, provider: Provider) -> None:
    answer = device.start()
    user_code = answer["user_code"]
    assert len(user_code) == 9
    assert user_code[4] == "-"
    assert set(user_code.replace("-", "")) <= set(USER_CODE_ALPHABET)
    assert answer["verification_uri"] == f"{provider.settings.issuer}/device"
    assert answer["verification_uri_complete"] == f"{provider.settings.issuer}/device?user_code={user_code}"
    assert answer["interval"] == 1
    assert answer["expires_in"] == 600
    assert normalize_user_code(user_code.lower().replace("-", " ")) == user_code.replace("-", "")


def test_poll_before_approval_is_pending_then_slow_down_when_too_fast(device: Device) -> None:
    code = device.start()["device_code"]
    status, body = device.poll(code)
    assert (status, body["error"]) == (400, "authorization_pending")
    status, body = device.poll(code)
    assert (status, body["error"]) == (400, "slow_down")


def test_approved_device_gets_an_id_token_with_cluster_claims_once(
    device: Device, browser: Browser, provider: Provider
) -> None:
    answer = device.start()
    status, body = device.poll(answer["device_code"])
    assert (status, body["error"]) == (400, "authorization_pending")
    assert "Device connected" in approve(browser, answer["verification_uri_complete"])
    time.sleep(1)
    status, body = device.poll(answer["device_code"])
    assert status == 200, body
    claims = provider.keys.verify(body["id_token"])
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert claims["groups"] == ["admins", "developers"]
    assert "preferred_username" not in claims  # not in the client's idTokenClaims
    assert body["refresh_token"]
    time.sleep(1)
    status, body = device.poll(answer["device_code"])
    assert (status, body["error"]) == (400, "invalid_grant")


def test_denied_device_gets_access_denied(device: Device, browser: Browser) -> None:
    answer = device.start()
    assert "Device refused" in approve(browser, answer["verification_uri_complete"], decision="deny")
    status, body = device.poll(answer["device_code"])
    assert (status, body["error"]) == (400, "access_denied")


def test_expired_device_code_gets_expired_token(
    make_provider: Callable[..., Provider], serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider(device_code_ttl=30)
    cli = register(
        provider.registry, "cli", public=True, redirect_uris=[], grant_types=[DEVICE_CODE_GRANT_TYPE]
    )
    with serve(provider) as http:
        device = Device(http, cli.client_id)
        code = device.start("openid")["device_code"]
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 31)
        status, body = device.poll(code)
    assert (status, body["error"]) == (400, "expired_token")


def test_client_without_the_device_grant_is_unauthorized(http: TestClient, spa: RegisteredClient) -> None:
    response = http.post("/device_authorization", data={"client_id": spa.client_id, "scope": "openid"})
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_wrong_user_codes_are_throttled(device: Device, browser: Browser, provider: Provider) -> None:
    answer = device.start()
    page = browser.get("/device")
    csrf = hidden(page.text, "csrf_token")
    statuses = [
        browser.http.post("/device", data={"csrf_token": csrf, "user_code": "BBBB-BBBB"}).status_code
        for _ in range(4)
    ]
    assert statuses == [400, 400, 400, 400]
    # Blocked now, even with the right code: guessing stops here for this address.
    response = browser.http.post("/device", data={"csrf_token": csrf, "user_code": answer["user_code"]})
    assert response.status_code == 429
    assert "Too many wrong codes" in page_text(response)


def test_visiting_the_device_page_stores_no_session_and_its_form_needs_the_csrf_cookie(
    browser: Browser, device: Device
) -> None:
    answer = device.start()
    page = browser.get("/device")
    assert page.status_code == 200
    assert browser.session_cookie is None
    csrf = hidden(page.text, "csrf_token")
    with browser.elsewhere():  # a cross-site post carries the token it scraped, not the cookie
        forged = browser.http.post("/device", data={"csrf_token": csrf, "user_code": answer["user_code"]})
    assert forged.status_code == 403
    response = browser.http.post(
        "/device", data={"csrf_token": csrf, "user_code": answer["user_code"]}, follow_redirects=False
    )
    assert response.status_code == 303
    assert browser.session_cookie is not None


def test_a_device_code_is_worthless_to_another_oidcclient_pinning_the_same_client_id(
    device: Device, cli: RegisteredClient, provider: Provider, http: TestClient
) -> None:
    code = device.start()["device_code"]
    provider.registry.delete_oidcclient(cli.objects[0])
    register(
        provider.registry,
        "cli",
        public=True,
        client_id=cli.client_id,
        namespace="elsewhere",
        redirect_uris=[],
        grant_types=[DEVICE_CODE_GRANT_TYPE, "refresh_token"],
    )

    status, body = Device(http, cli.client_id).poll(code)

    assert (status, body["error"]) == (400, "invalid_grant")
