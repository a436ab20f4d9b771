"""``GET /.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4; RFC 8414).

The document is built once and served as precomputed bytes: it changes only with the settings and the
signing algorithms, which need a restart or a new key set (then the document is rebuilt).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.authorization_server import SCOPES_SUPPORTED
from kubeoidc_provider.context import provider_of
from kubeoidc_provider.jsonutil import dump_json

PATHS = {
    "authorization_endpoint": "/authorize",
    "token_endpoint": "/token",
    "userinfo_endpoint": "/userinfo",
    "jwks_uri": "/jwks",
    "revocation_endpoint": "/revoke",
    "introspection_endpoint": "/introspect",
    "end_session_endpoint": "/logout",
}
CLAIMS_SUPPORTED = (
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
    "name", "preferred_username", "email", "email_verified", "groups",
)  # fmt: skip
CACHE_CONTROL = "public, max-age=300"


def discovery_document(issuer: str, signing_algorithms: list[str]) -> dict[str, Any]:
    """Every value is one the provider really supports; absent features are stated false."""
    document: dict[str, Any] = {"issuer": issuer}
    document.update({name: f"{issuer}{path}" for name, path in PATHS.items()})
    document.update(
        scopes_supported=list(SCOPES_SUPPORTED),
        response_types_supported=["code"],
        response_modes_supported=["query"],
        grant_types_supported=["authorization_code", "refresh_token", "client_credentials"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=signing_algorithms,
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
        revocation_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
        introspection_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        code_challenge_methods_supported=["S256"],
        prompt_values_supported=["none", "login", "consent"],
        claims_supported=list(CLAIMS_SUPPORTED),
        claims_parameter_supported=False,
        request_parameter_supported=False,
        request_uri_parameter_supported=False,
        authorization_response_iss_parameter_supported=True,
        frontchannel_logout_supported=False,
        backchannel_logout_supported=False,
    )
    return document


def discovery_bytes(issuer: str, signing_algorithms: list[str]) -> bytes:
    return dump_json(discovery_document(issuer, signing_algorithms))


async def openid_configuration(request: Request) -> Response:
    provider = provider_of(request)
    return Response(
        provider.discovery, media_type="application/json", headers={"Cache-Control": CACHE_CONTROL}
    )
