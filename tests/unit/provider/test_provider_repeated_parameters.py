"""A repeated parameter at the authorization and end-session endpoints is refused on a page, never
redirected: a check and the code that uses the value could otherwise read different copies."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from support.provider import RegisteredClient, pkce_pair


def authorization_query(web: RegisteredClient) -> list[tuple[str, str]]:
    _, challenge = pkce_pair()
    return [
        ("client_id", web.client_id),
        ("response_type", "code"),
        ("scope", "openid"),
        ("redirect_uri", web.redirect_uri),
        ("state", "s1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]


@pytest.mark.parametrize("repeated", ["state", "nonce", "prompt", "login_hint", "max_age", "code_challenge"])
def test_authorize_refuses_any_repeated_parameter_without_redirecting(
    http: TestClient, web: RegisteredClient, repeated: str
) -> None:
    query = [*authorization_query(web), (repeated, "1"), (repeated, "2")]

    response = http.get("/authorize?" + urlencode(query), follow_redirects=False)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert f"Multiple &#39;{repeated}&#39; in request." in response.text


def test_authorize_post_refuses_a_repeated_parameter(http: TestClient, web: RegisteredClient) -> None:
    form = [*authorization_query(web), ("nonce", "n1"), ("nonce", "n2")]

    response = http.post(
        "/authorize",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )

    assert response.status_code == 400
    assert "location" not in response.headers


def test_end_session_refuses_a_repeated_parameter(http: TestClient, web: RegisteredClient) -> None:
    query = [("client_id", web.client_id), ("client_id", "another"), ("state", "s")]

    response = http.get("/logout?" + urlencode(query), follow_redirects=False)

    assert response.status_code == 400
    assert "location" not in response.headers
