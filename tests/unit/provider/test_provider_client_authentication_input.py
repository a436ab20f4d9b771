"""Client authentication refuses what it cannot read, and a request that authenticates twice.

RFC 6749 §2.3: a client uses one authentication method per request; §5.2: credentials that do not
name a client are ``invalid_client`` (401), never a server error.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.testclient import TestClient

from support.provider import RegisteredClient

BACK_CHANNEL = ("/token", "/revoke", "/introspect")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def body_for(path: str) -> dict[str, str]:
    return {"grant_type": "client_credentials"} if path == "/token" else {"token": "unknown"}


@pytest.mark.parametrize("path", BACK_CHANNEL)
@pytest.mark.parametrize(
    "authorization",
    [b"Basic \xff\xfe\xfd", b"Basic " + base64.b64encode(b"\xff\xfe:\xfd"), b"Basic \xc3\xa9t\xc3\xa9"],
    ids=["raw-non-ascii", "base64-of-non-utf8", "utf8-bytes-in-header"],
)
def test_non_ascii_basic_credentials_are_invalid_client(
    http: TestClient, path: str, authorization: bytes
) -> None:
    response = http.post(path, data=body_for(path), headers=[(b"Authorization", authorization)])

    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", BACK_CHANNEL)
@pytest.mark.parametrize(
    "extra",
    [{"client_secret": "anything"}, {"client_id": "another-client"}, {"client_assertion": "x.y.z"}],
    ids=["client_secret", "another-client_id", "client_assertion"],
)
def test_basic_credentials_beside_body_credentials_are_invalid_request(
    http: TestClient, web: RegisteredClient, m2m: RegisteredClient, path: str, extra: dict[str, str]
) -> None:
    if "client_id" in extra:
        extra = {"client_id": web.client_id}  # a real client, other than the Basic one
    response = http.post(
        path,
        data={**body_for(path), **extra},
        headers={"Authorization": basic(m2m.client_id, m2m.secret or "")},
    )

    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "invalid_request"
    assert "one method per request" in body["error_description"]


def test_basic_credentials_with_the_same_client_id_in_the_body_are_served(
    http: TestClient, m2m: RegisteredClient
) -> None:
    # Relying parties such as pyoidc repeat the client ID in the body: one client, one method.
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": m2m.client_id},
        headers={"Authorization": basic(m2m.client_id, m2m.secret or "")},
    )

    assert response.status_code == 200, response.text
