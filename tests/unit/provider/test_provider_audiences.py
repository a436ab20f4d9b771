"""Access tokens name the resource servers they are meant for (RFC 8707, RFC 9068 §3): a client's
registered ``audiences``, narrowed by the token request's ``resource`` parameters, so that an API can
tell the tokens meant for it from those of other tenants' clients."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from support.provider import ISSUER, RegisteredClient, register

ORDERS = "https://orders.example.com"
BILLING = "https://billing.example.com"


@pytest.fixture
def api_client(provider: Provider) -> RegisteredClient:
    client = register(
        provider.registry,
        "reports",
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["reports:read"],
    )
    oidcclient = copy.deepcopy(client.objects[0])
    oidcclient["spec"]["audiences"] = [ORDERS, BILLING]
    provider.registry.upsert_oidcclient(oidcclient)
    return client


def token(http: TestClient, client: RegisteredClient, *resources: str, scope: str = "reports:read") -> Any:
    body = [("grant_type", "client_credentials"), ("scope", scope), *(("resource", r) for r in resources)]
    return http.post(
        "/token",
        content=urlencode(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(client.client_id, client.secret or ""),
    )


def claims_of(provider: Provider, response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    claims: dict[str, Any] = provider.keys.verify(response.json()["access_token"], typ="at+jwt")
    return claims


def test_a_resource_parameter_makes_it_the_tokens_only_audience(
    provider: Provider, http: TestClient, api_client: RegisteredClient
) -> None:
    claims = claims_of(provider, token(http, api_client, ORDERS))

    assert claims["aud"] == ORDERS
    assert claims["client_id"] == api_client.client_id


def test_several_resource_parameters_are_all_audiences(
    provider: Provider, http: TestClient, api_client: RegisteredClient
) -> None:
    assert claims_of(provider, token(http, api_client, ORDERS, BILLING))["aud"] == [ORDERS, BILLING]


def test_without_a_resource_the_audience_is_every_registered_one(
    provider: Provider, http: TestClient, api_client: RegisteredClient
) -> None:
    assert claims_of(provider, token(http, api_client))["aud"] == [ORDERS, BILLING]


def test_a_resource_the_client_is_not_registered_for_is_invalid_target(
    http: TestClient, api_client: RegisteredClient
) -> None:
    response = token(http, api_client, "https://payroll.example.com")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_a_client_without_audiences_gets_the_issuer_and_no_resource(
    provider: Provider, http: TestClient
) -> None:
    plain = register(
        provider.registry, "plain", grant_types=["client_credentials"], redirect_uris=[], scopes=["x"]
    )

    assert claims_of(provider, token(http, plain, scope="x"))["aud"] == ISSUER
    assert token(http, plain, ORDERS, scope="x").json()["error"] == "invalid_target"
