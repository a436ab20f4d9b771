"""OP-ClientAuth-PrivateJWT: npm ``openid-client`` (v6, ``PrivateKeyJwt``) authenticates with a key the
test makes, through the code flow in Chromium and with client credentials; ``client_secret_jwt`` is
refused on purpose (the provider keeps no plain secret to check its HMAC).

The refusals one by one (replay, audience, expiry, unknown key, ``alg: none``...) are in
``tests/unit/provider/test_provider_private_key_jwt.py``: the same checks, with assertions shaped by hand.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

from kubeoidc_provider.context import Provider
from support.client_keys import ClientKey, register_key_client
from support.node_rp import CHROMIUM
from support.provider import PASSWORD

pytestmark = pytest.mark.node

WEB_SCOPES = ["openid", "profile", "email", "offline_access"]


class KeyClient:
    """A ``private_key_jwt`` client registered with the provider, and its relying party's configuration."""

    def __init__(self, provider: Provider, key: ClientKey, **options: Any) -> None:
        registered = register_key_client(
            provider.registry, f"ledger-{secrets.token_hex(2)}", keys=[key], **options
        )
        self.client_id = registered.client_id
        self.config: dict[str, Any] = {
            "issuer": provider.settings.issuer,
            "clientId": registered.client_id,
            "authMethod": "private_key_jwt",
            "privateJwk": key.private_jwk(),
            "redirectUri": registered.redirect_uri,
            "scope": " ".join(options.get("scopes", ["invoices:read"])),
            "username": "alice",
            "password": PASSWORD,
            "chromium": CHROMIUM,
        }

    def rp_config(self, **overrides: Any) -> dict[str, Any]:
        return {**self.config, **overrides}


@pytest.fixture(scope="module")
def rsa_key() -> ClientKey:
    return ClientKey("RS256")


@pytest.fixture(scope="module")
def ec_key() -> ClientKey:
    return ClientKey("ES256")


@pytest.fixture(scope="module")
def web_flow(
    provider: Provider, rsa_key: ClientKey, relying_party: Callable[..., dict[str, Any]], chromium: str
) -> dict[str, Any]:
    app = KeyClient(
        provider,
        rsa_key,
        scopes=WEB_SCOPES,
        redirect_uris=["https://ledger.example.test/callback"],
        grant_types=["authorization_code", "refresh_token"],
    )
    result = relying_party("code-flow", app.rp_config())
    result["client_id"] = app.client_id
    return result


@pytest.mark.browser
def test_op_clientauth_privatejwt_code_flow_in_chromium_with_an_rsa_key(web_flow: dict[str, Any]) -> None:
    assert "failed" not in web_flow, web_flow
    assert web_flow["token"]["idToken"]["aud"] == web_flow["client_id"]
    assert web_flow["token"]["hasRefreshToken"] is True
    # The refresh, introspection and revocation each authenticated with a fresh assertion.
    assert web_flow["refresh"]["rotated"] is True
    assert web_flow["introspection"]["access"]["active"] is True
    assert web_flow["introspection"]["access"]["client_id"] == web_flow["client_id"]
    assert web_flow["afterRevocation"]["refresh"]["active"] is False
    assert web_flow["afterRevocation"]["refreshGrant"]["error"] == "invalid_grant"


def test_op_clientauth_privatejwt_client_credentials_with_an_ec_key(
    provider: Provider, ec_key: ClientKey, relying_party: Callable[..., dict[str, Any]]
) -> None:
    machine = KeyClient(provider, ec_key)

    result = relying_party("client-credentials", machine.rp_config())

    grant = result["grant"]
    assert grant["ok"] is True, grant
    assert grant["value"]["accessTokenClaims"]["client_id"] == machine.client_id
    assert grant["value"]["introspection"]["active"] is True


def test_op_clientauth_privatejwt_a_key_the_client_does_not_have_is_refused(
    provider: Provider, ec_key: ClientKey, relying_party: Callable[..., dict[str, Any]]
) -> None:
    machine = KeyClient(provider, ec_key)
    impostor = ClientKey("ES256", kid=ec_key.kid)

    result = relying_party("client-credentials", machine.rp_config(privateJwk=impostor.private_jwk()))

    grant = result["grant"]
    assert grant["ok"] is False
    assert (grant["status"], grant["error"]) == (401, "invalid_client")


def test_client_secret_jwt_is_refused_on_purpose(
    provider: Provider, ec_key: ClientKey, relying_party: Callable[..., dict[str, Any]]
) -> None:
    machine = KeyClient(provider, ec_key)

    result = relying_party("client-credentials", machine.rp_config(authMethod="client_secret_jwt"))

    grant = result["grant"]
    assert grant["ok"] is False
    assert (grant["status"], grant["error"]) == (401, "invalid_client")
