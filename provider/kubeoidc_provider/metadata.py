"""The provider's metadata document (OpenID Connect Discovery 1.0 §3; RFC 8414 §2).

Built as bytes once per key set (see ``signing``): it changes only with the settings and the signing
algorithms.
"""

from __future__ import annotations

from typing import Any

from kubeoidc_contract import crd
from kubeoidc_provider.assertions import ALGORITHMS as ASSERTION_ALGORITHMS
from kubeoidc_provider.jsonutil import dump_json
from kubeoidc_provider.oauth_client import AUTH_METHODS, SECRET_AUTH_METHODS
from kubeoidc_provider.users import PROFILE_CLAIMS

#: The one authentication context (``acr``): a password checked by the user directory.
ACR = "urn:kubeoidc:acr:password"
#: The scopes with an OpenID Connect meaning, advertised here. A client may also have scopes of its own
#: (``invoices:read``): what a client may ask for is exactly its ``spec.scopes``.
SCOPES_SUPPORTED = ("openid", "profile", "email", "groups", "offline_access", "address", "phone")

PATHS = {
    "authorization_endpoint": "/authorize",
    "token_endpoint": "/token",
    "userinfo_endpoint": "/userinfo",
    "jwks_uri": "/jwks",
    "revocation_endpoint": "/revoke",
    "introspection_endpoint": "/introspect",
    "end_session_endpoint": "/logout",
    "device_authorization_endpoint": "/device_authorization",
}
CLAIMS_SUPPORTED = (
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
    "name", "preferred_username", *PROFILE_CLAIMS, "email", "email_verified", "groups",
    "acr", "amr", "sid", "phone_number", "phone_number_verified", "address",
)  # fmt: skip


def discovery_document(issuer: str, signing_algorithms: list[str]) -> dict[str, Any]:
    """Every value is one the provider really supports; absent features are stated false."""
    document: dict[str, Any] = {"issuer": issuer}
    document.update({name: f"{issuer}{path}" for name, path in PATHS.items()})
    document.update(
        scopes_supported=list(SCOPES_SUPPORTED),
        response_types_supported=["code"],
        response_modes_supported=["query", "form_post"],
        grant_types_supported=list(crd.grant_types()),
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=signing_algorithms,
        token_endpoint_auth_methods_supported=list(AUTH_METHODS),
        # For the JWT assertion methods (private_key_jwt, kubernetes_service_account_jwt): what the
        # assertion may be signed with (RFC 8414 §2 asks for it with any JWT method). Asymmetric only:
        # client_secret_jwt is refused on purpose (it needs the plain secret, which is never kept).
        token_endpoint_auth_signing_alg_values_supported=sorted(ASSERTION_ALGORITHMS),
        revocation_endpoint_auth_methods_supported=list(AUTH_METHODS),
        revocation_endpoint_auth_signing_alg_values_supported=sorted(ASSERTION_ALGORITHMS),
        introspection_endpoint_auth_methods_supported=list(SECRET_AUTH_METHODS),
        introspection_endpoint_auth_signing_alg_values_supported=sorted(ASSERTION_ALGORITHMS),
        code_challenge_methods_supported=["S256"],
        prompt_values_supported=["none", "login", "consent", "select_account"],
        claims_supported=list(CLAIMS_SUPPORTED),
        claims_parameter_supported=True,
        claim_types_supported=["normal"],
        acr_values_supported=[ACR],
        display_values_supported=["page", "popup", "touch", "wap"],
        userinfo_signing_alg_values_supported=signing_algorithms,
        request_parameter_supported=False,
        request_uri_parameter_supported=False,
        authorization_response_iss_parameter_supported=True,
        frontchannel_logout_supported=True,
        frontchannel_logout_session_supported=True,
        backchannel_logout_supported=True,
        backchannel_logout_session_supported=True,
    )
    return document


def discovery_bytes(issuer: str, signing_algorithms: list[str]) -> bytes:
    return dump_json(discovery_document(issuer, signing_algorithms))
