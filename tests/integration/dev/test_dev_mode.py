"""``kubeoidc dev`` end to end: manifests in a folder become clients a relying party can use at once."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import yaml

from kubeoidc_provider.assertions import JWT_BEARER
from support.client_keys import ClientKey
from support.devmode import StartDev
from support.provider import pkce_pair

WEB_APP = """\
apiVersion: kubeoidc.io/v1alpha1
kind: OIDCClient
metadata:
  name: web
{annotations}spec:
  displayName: Web App
  redirectURIs:
    - https://web.example.test/callback
{extra_uris}  grantTypes: [authorization_code, refresh_token]
  scopes: [openid, profile, email]
"""
MACHINE = """\
apiVersion: kubeoidc.io/v1alpha1
kind: OIDCClient
metadata:
  name: {name}
spec:
  grantTypes: [client_credentials]
  scopes: [reports:read]
"""


def write_web_app(folder: Path, *, extra_uris: tuple[str, ...] = (), rotate: str | None = None) -> None:
    annotations = f"  annotations:\n    kubeoidc.io/rotate-secret: {rotate!r}\n" if rotate else ""
    extra = "".join(f"    - {uri}\n" for uri in extra_uris)
    text = WEB_APP.format(annotations=annotations, extra_uris=extra)
    path = folder / "web.yaml"
    path.write_text(text)
    # The folder is polled by modification time; make each edit visible even within one clock tick.
    stamp = time.time_ns() + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def client_credentials(issuer: str, client_id: str, secret: str) -> httpx2.Response:
    return httpx2.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "scope": "reports:read"},
        auth=(client_id, secret),
        timeout=10,
    )


def authorize_status(issuer: str, client_id: str, redirect_uri: str) -> int:
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return httpx2.get(f"{issuer}/authorize", params=params, timeout=10).status_code


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds pass (the folder is polled each second)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def sign_in(issuer: str, client_id: str, secret: str, redirect_uri: str, password: str) -> dict[str, object]:
    """The code flow through the login and consent pages, as a browser would post them."""
    verifier, challenge = pkce_pair()
    with httpx2.Client(base_url=issuer, timeout=10) as browser:
        response = browser.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid profile email",
                "state": "st",
                "nonce": "nc",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        while response.status_code in (302, 303) and response.headers["location"].startswith(issuer):
            response = browser.get(response.headers["location"])
        form = dict(re.findall(r'name="(interaction|csrf_token)" value="([^"]+)"', response.text))
        response = browser.post("/login", data={**form, "username": "demo", "password": password})
        while response.status_code in (302, 303) and response.headers["location"].startswith(issuer):
            response = browser.get(response.headers["location"])
        if "decision" in response.text:
            form = dict(re.findall(r'name="(interaction|csrf_token)" value="([^"]+)"', response.text))
            response = browser.post("/consent", data={**form, "decision": "allow"})
            while response.status_code in (302, 303) and response.headers["location"].startswith(issuer):
                response = browser.get(response.headers["location"])
        location = response.headers["location"]
        assert location.startswith(redirect_uri), location
        code = parse_qs(urlsplit(location).query)["code"][0]
    token = httpx2.post(
        f"{issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
        timeout=10,
    )
    assert token.status_code == 200, token.text
    tokens: dict[str, object] = token.json()
    return tokens


def test_dev_serves_discovery_and_prints_every_clients_credentials(
    manifests: Path, start_dev: StartDev
) -> None:
    write_web_app(manifests)
    (manifests / "machine.yaml").write_text(MACHINE.format(name="reports"))

    dev = start_dev(manifests)

    discovery = httpx2.get(f"{dev.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == dev.issuer
    web, machine = dev.card("web"), dev.card("reports")
    assert "Ready=True" in web["header"]
    assert "Ready=True" in machine["header"]
    assert "https://web.example.test/callback" in dev.output()
    assert client_credentials(dev.issuer, machine["client_id"], machine["client_secret"]).status_code == 200


def test_dev_prints_the_health_port_and_serves_probes_there_only(
    manifests: Path, start_dev: StartDev
) -> None:
    write_web_app(manifests)

    dev = start_dev(manifests)

    assert f"health:    {dev.health}/healthz, {dev.health}/readyz, {dev.health}/metrics" in dev.output()
    assert httpx2.get(f"{dev.health}/readyz", timeout=10).text == "ok"
    assert "kubeoidc_clients 1" in httpx2.get(f"{dev.health}/metrics", timeout=10).text
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx2.get(f"{dev.issuer}{path}", timeout=10).status_code == 404


def test_dev_serves_a_client_with_its_own_key_and_prints_that_it_has_no_secret(
    manifests: Path, start_dev: StartDev
) -> None:
    key = ClientKey("ES256")
    manifest = {
        "apiVersion": "kubeoidc.io/v1alpha1",
        "kind": "OIDCClient",
        "metadata": {"name": "ledger"},
        "spec": {
            "grantTypes": ["client_credentials"],
            "scopes": ["reports:read"],
            "tokenEndpointAuthMethod": "private_key_jwt",
            "jwks": {"keys": [key.public_jwk()]},
        },
    }
    (manifests / "ledger.yaml").write_text(yaml.safe_dump(manifest))

    dev = start_dev(manifests)
    card = dev.card("ledger")
    token = httpx2.post(
        f"{dev.issuer}/token",
        data={
            "grant_type": "client_credentials",
            "client_id": card["client_id"],
            "client_assertion_type": JWT_BEARER,
            "client_assertion": key.assertion(card["client_id"], dev.issuer),
        },
        timeout=10,
    )

    assert "Ready=True" in card["header"]
    assert "(none: authenticates with its own key, private_key_jwt; public keys: inline jwks)" in dev.output()
    assert token.status_code == 200, token.text


def test_the_printed_demo_user_signs_in_through_the_code_flow(manifests: Path, start_dev: StartDev) -> None:
    write_web_app(manifests)
    dev = start_dev(manifests)
    web = dev.card("web")

    tokens = sign_in(
        dev.issuer,
        web["client_id"],
        web["client_secret"],
        "https://web.example.test/callback",
        dev.demo_password(),
    )

    userinfo = httpx2.get(
        f"{dev.issuer}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    )
    assert userinfo.json()["preferred_username"] == "demo"
    assert userinfo.json()["given_name"] == "Demo"  # the profile scope's other claims
    assert "id_token" in tokens
    assert "refresh_token" in tokens


def test_a_redirect_uri_added_to_the_manifest_works_without_a_restart(
    manifests: Path, start_dev: StartDev
) -> None:
    write_web_app(manifests)
    dev = start_dev(manifests)
    client_id = dev.card("web")["client_id"]
    new_uri = "https://web.example.test/other-callback"
    assert authorize_status(dev.issuer, client_id, new_uri) == 400  # an error page, never a redirect

    write_web_app(manifests, extra_uris=(new_uri,))

    assert eventually(lambda: authorize_status(dev.issuer, client_id, new_uri) == 303)
    assert dev.card("web")["client_id"] == client_id


def test_the_rotation_annotation_rotates_the_secret_once(
    manifests: Path, start_dev: StartDev, tmp_path: Path
) -> None:
    (manifests / "machine.yaml").write_text(MACHINE.format(name="reports"))
    dev = start_dev(manifests)
    before = dev.card("reports")
    mark = len(dev.lines)

    text = MACHINE.format(name="reports").replace(
        "  name: reports\n", "  name: reports\n  annotations:\n    kubeoidc.io/rotate-secret: '2026-11-27'\n"
    )
    (manifests / "machine.yaml").write_text(text)
    dev.wait_for(r"SecretRotated", start=mark)
    after = dev.card("reports", start=mark)

    assert after["client_id"] == before["client_id"]
    assert after["client_secret"] != before["client_secret"]
    refused = client_credentials(dev.issuer, before["client_id"], before["client_secret"])
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert client_credentials(dev.issuer, after["client_id"], after["client_secret"]).status_code == 200

    # A restart honours the same annotation value again: nothing rotates, the credentials are kept.
    dev.process.terminate()
    dev.process.wait(timeout=10)
    again = start_dev(manifests, tmp_path / "state")
    assert again.card("reports")["client_secret"] == after["client_secret"]
    assert "SecretRotated" not in again.output()


def test_a_new_file_adds_a_client_and_a_deleted_file_removes_it(manifests: Path, start_dev: StartDev) -> None:
    (manifests / "machine.yaml").write_text(MACHINE.format(name="reports"))
    dev = start_dev(manifests)
    mark = len(dev.lines)

    (manifests / "second.yaml").write_text(MACHINE.format(name="exports"))
    exports = dev.card("exports", start=mark)
    assert client_credentials(dev.issuer, exports["client_id"], exports["client_secret"]).status_code == 200

    (manifests / "second.yaml").unlink()
    dev.wait_for(r"OIDCClient default/exports: manifest removed", start=mark)
    refused = client_credentials(dev.issuer, exports["client_id"], exports["client_secret"])
    assert refused.status_code == 401


def test_a_bad_manifest_is_reported_by_file_and_field_and_the_others_still_run(
    manifests: Path, start_dev: StartDev
) -> None:
    (manifests / "machine.yaml").write_text(MACHINE.format(name="reports"))
    bad = WEB_APP.format(annotations="", extra_uris="").replace(
        "https://web.example.test/callback", "https://web.example.test/cb#fragment"
    )
    (manifests / "broken.yaml").write_text(bad)

    dev = start_dev(manifests)

    refusal = dev.wait_for(r"refused: broken\.yaml: OIDCClient web: spec\.redirectURIs\[0\]: .*fragment")
    assert refusal
    assert "Ready=True" in dev.card("reports")["header"]


def test_credentials_survive_a_restart(manifests: Path, start_dev: StartDev, tmp_path: Path) -> None:
    write_web_app(manifests)
    dev = start_dev(manifests)
    first = dev.card("web")
    dev.process.terminate()
    dev.process.wait(timeout=10)

    again = start_dev(manifests, tmp_path / "state")

    assert again.card("web")["client_id"] == first["client_id"]
    assert again.card("web")["client_secret"] == first["client_secret"]
