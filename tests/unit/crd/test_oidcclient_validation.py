"""OIDCClient manifests are accepted or refused as a real API server would, with the CRD's messages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import kubeoidc_contract as contract
from kubeoidc.manifest import (
    RULES_NOT_CHECKED,
    InvalidOIDCClient,
    Violation,
    apply_defaults,
    checked_oidcclient,
    load_manifests,
    validate_oidcclient,
)
from kubeoidc_contract.crd import openapi_schema

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

FRAGMENT = "a redirect URI must not have a fragment (the part after '#')"
WILDCARD = "a redirect URI must not contain a wildcard ('*'): list every URI exactly"
SCHEME = (
    "a redirect URI must be absolute, with the scheme https, or http on localhost, 127.0.0.1 or [::1], "
    "or a private-use scheme containing a dot such as com.example.app:/callback (RFC 8252)"
)
LOGOUT_FRAGMENT = "a post-logout redirect URI must not have a fragment (the part after '#')"
LOGOUT_WILDCARD = "a post-logout redirect URI must not contain a wildcard ('*'): list every URI exactly"
LOGOUT_SCHEME = (
    "a post-logout redirect URI must be absolute, with the scheme https, or http on localhost, 127.0.0.1 "
    "or [::1], or a private-use scheme containing a dot such as com.example.app:/logout (RFC 8252)"
)
CODE_NEEDS_REDIRECT = "grantTypes includes authorization_code, which needs at least one URI in redirectURIs"
REFRESH_NEEDS_CODE = (
    "refresh_token needs authorization_code or urn:ietf:params:oauth:grant-type:device_code in "
    "grantTypes: refresh tokens are only issued by the flows where a user signs in"
)
PUBLIC_NEEDS_NONE = "a public client has no secret: set tokenEndpointAuthMethod to none when public is true"
PUBLIC_NO_CLIENT_CREDENTIALS = (
    "a public client cannot use the client_credentials grant, which needs a client secret"
)
NONE_NEEDS_PUBLIC = (
    "tokenEndpointAuthMethod none is only for public clients: set public to true (the client then has "
    "no secret and must use PKCE)"
)
SA_METHOD_NEEDS_ACCOUNTS = (
    "tokenEndpointAuthMethod kubernetes_service_account_jwt needs at least one ServiceAccount in "
    "serviceAccounts"
)
ACCOUNTS_NEED_SA_METHOD = (
    "a client with serviceAccounts authenticates with their tokens and has no secret: set "
    "tokenEndpointAuthMethod to kubernetes_service_account_jwt"
)
KEYS_NEED_ONE_SOURCE = (
    "tokenEndpointAuthMethod private_key_jwt needs the client's public keys in exactly one of jwks "
    "(inline) and jwksURI"
)
KEYS_NEED_KEY_METHOD = (
    "jwks and jwksURI hold the keys of a client that signs its own assertions: set "
    "tokenEndpointAuthMethod to private_key_jwt"
)
SIGNING_ALG_NEEDS_KEY_METHOD = (
    "tokenEndpointAuthSigningAlg applies to tokenEndpointAuthMethod private_key_jwt only"
)
JWKS_URI_FRAGMENT = "jwksURI must not have a fragment (the part after '#')"
JWKS_URI_SCHEME = "jwksURI must be an absolute https URL, or http on localhost, 127.0.0.1 or [::1]"
KEYS_NEED_KIDS = "when jwks holds several keys, each needs a kid (an assertion names the key that signed it)"
DISTINCT_KIDS = "jwks keys must have distinct kids"
SYMMETRIC_KEY = (
    "a jwks key must be an asymmetric public key (kty RSA, EC or OKP): a symmetric key (oct) is a shared "
    "secret, which this provider never holds"
)
PRIVATE_KEY = "a jwks key must hold the public key only: remove its private members (d, p, q, dp, dq, qi)"
CLIENT_ID_IMMUTABLE = "clientID is immutable once set"
CLIENT_ID_KEPT = "clientID cannot be removed once set"
URL = "url must be an absolute http or https URL, such as https://app.example.com"
BACKCHANNEL_FRAGMENT = "backchannelLogoutURI must not have a fragment (the part after '#')"
BACKCHANNEL_SCHEME = (
    "backchannelLogoutURI must be an absolute https URL, or http on localhost, 127.0.0.1 or [::1]"
)
FRONTCHANNEL_FRAGMENT = "frontchannelLogoutURI must not have a fragment (the part after '#')"
FRONTCHANNEL_SCHEME = (
    "frontchannelLogoutURI must be an absolute https URL, or http on localhost, 127.0.0.1 or [::1]"
)
NAME_LENGTH = (
    "metadata.name must be at most 63 characters: it becomes the value of the kubeoidc.io/client label "
    "on the client's Secret"
)
TEMPLATE_LABELS = (
    "secretTemplate.labels cannot set app.kubernetes.io/managed-by or a kubeoidc.io/ label: the operator "
    "sets those"
)
TEMPLATE_ANNOTATIONS = (
    "secretTemplate.annotations cannot set a kubeoidc.io/ annotation: the operator sets those"
)
STANDARD_KEY = "client_id, client_secret and issuer are always written: choose another key name"
DIFFERENT_KEYS = "secretTemplate.keys must name different keys"


#: A client's public EC key (P-256), as ``spec.jwks`` holds it.
PUBLIC_EC_KEY = {
    "kty": "EC",
    "kid": "2024-05",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}


def key_client(**spec: Any) -> dict[str, Any]:
    """A ``private_key_jwt`` machine client with an inline key, with ``spec`` fields replaced."""
    body: dict[str, Any] = {
        "redirectURIs": None,
        "grantTypes": ["client_credentials"],
        "tokenEndpointAuthMethod": contract.PRIVATE_KEY_JWT_AUTH_METHOD,
        "jwks": {"keys": [PUBLIC_EC_KEY]},
    }
    body.update(spec)
    return body


def client(name: str = "grafana", **spec: Any) -> dict[str, Any]:
    """A valid confidential web client, with ``spec`` fields replaced (None drops a field)."""
    body: dict[str, Any] = {"redirectURIs": ["https://grafana.example.com/login/generic_oauth"]}
    body.update(spec)
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": {"name": name},
        "spec": {key: value for key, value in body.items() if value is not None},
    }


def all_rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    rules = list(schema.get("x-kubernetes-validations", ()))
    children = [
        *schema.get("properties", {}).values(),
        schema.get("items"),
        schema.get("additionalProperties"),
    ]
    for child in children:
        if isinstance(child, dict):
            rules += all_rules(child)
    return rules


def example_documents() -> list[Any]:
    return [
        pytest.param(document, id=f"{path.stem}/{document['metadata']['name']}")
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for document in load_manifests(path.read_text(encoding="utf-8"))
        if document.get("kind") == "OIDCClient"  # identity sources and their Secrets sit beside them
    ]


# --- The examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("manifest", example_documents())
def test_example_manifest_is_accepted(manifest: dict[str, Any]) -> None:
    assert validate_oidcclient(manifest) == []


@pytest.mark.parametrize("manifest", example_documents())
def test_example_manifest_leaves_the_namespace_to_the_user(manifest: dict[str, Any]) -> None:
    assert "namespace" not in manifest["metadata"]


def test_examples_cover_a_web_app_a_public_client_and_a_machine_client() -> None:
    def spec_of(stem: str) -> dict[str, Any]:
        text = (EXAMPLES / f"{stem}.yaml").read_text(encoding="utf-8")
        return dict(apply_defaults(load_manifests(text)[0])["spec"])

    web, spa, machine = spec_of("web-app"), spec_of("spa"), spec_of("machine-to-machine")
    assert (web["public"], web["grantTypes"]) == (False, ["authorization_code", "refresh_token"])
    assert (spa["public"], spa["tokenEndpointAuthMethod"]) == (True, "none")
    assert machine["grantTypes"] == ["client_credentials"]
    assert "redirectURIs" not in machine


# --- Bad manifests, each refused with its own message ------------------------------------------------

BAD_SPECS = [
    pytest.param(
        {"redirectURIs": ["https://app.example.com/callback#done"]},
        Violation("spec.redirectURIs[0]", FRAGMENT),
        id="redirect-uri-with-fragment",
    ),
    pytest.param(
        {"redirectURIs": ["https://*.example.com/callback"]},
        Violation("spec.redirectURIs[0]", WILDCARD),
        id="redirect-uri-with-wildcard-host",
    ),
    pytest.param(
        {"redirectURIs": ["https://app.example.com/callback", "https://app.example.com/*"]},
        Violation("spec.redirectURIs[1]", WILDCARD),
        id="redirect-uri-with-wildcard-path",
    ),
    pytest.param(
        {"redirectURIs": ["http://app.example.com/callback"]},
        Violation("spec.redirectURIs[0]", SCHEME),
        id="redirect-uri-http-on-a-public-host",
    ),
    pytest.param(
        {"redirectURIs": ["http://localhost.example.com/callback"]},
        Violation("spec.redirectURIs[0]", SCHEME),
        id="redirect-uri-http-on-a-host-named-like-localhost",
    ),
    pytest.param(
        {"redirectURIs": ["/callback"]},
        Violation("spec.redirectURIs[0]", SCHEME),
        id="redirect-uri-relative",
    ),
    pytest.param(
        {"redirectURIs": ["myapp:/callback"]},
        Violation("spec.redirectURIs[0]", SCHEME),
        id="redirect-uri-private-scheme-without-a-dot",
    ),
    pytest.param(
        {"redirectURIs": ["https://user@app.example.com/callback"]},
        Violation("spec.redirectURIs[0]", SCHEME),
        id="redirect-uri-with-userinfo",
    ),
    pytest.param(
        {"redirectURIs": ["javascript:alert(1)"]},
        Violation("spec.redirectURIs[0]", SCHEME),
        id="redirect-uri-javascript",
    ),
    pytest.param(
        {"postLogoutRedirectURIs": ["https://app.example.com/#bye"]},
        Violation("spec.postLogoutRedirectURIs[0]", LOGOUT_FRAGMENT),
        id="post-logout-uri-with-fragment",
    ),
    pytest.param(
        {"postLogoutRedirectURIs": ["https://*.example.com/"]},
        Violation("spec.postLogoutRedirectURIs[0]", LOGOUT_WILDCARD),
        id="post-logout-uri-with-wildcard",
    ),
    pytest.param(
        {"postLogoutRedirectURIs": ["http://app.example.com/"]},
        Violation("spec.postLogoutRedirectURIs[0]", LOGOUT_SCHEME),
        id="post-logout-uri-http-on-a-public-host",
    ),
    pytest.param(
        {"backchannelLogoutURI": "https://app.example.com/logout#now"},
        Violation("spec.backchannelLogoutURI", BACKCHANNEL_FRAGMENT),
        id="backchannel-logout-uri-with-fragment",
    ),
    pytest.param(
        {"backchannelLogoutURI": "http://app.example.com/logout"},
        Violation("spec.backchannelLogoutURI", BACKCHANNEL_SCHEME),
        id="backchannel-logout-uri-http-on-a-public-host",
    ),
    pytest.param(
        {"frontchannelLogoutURI": "https://app.example.com/logout#now"},
        Violation("spec.frontchannelLogoutURI", FRONTCHANNEL_FRAGMENT),
        id="frontchannel-logout-uri-with-fragment",
    ),
    pytest.param(
        {"frontchannelLogoutURI": "http://app.example.com/logout"},
        Violation("spec.frontchannelLogoutURI", FRONTCHANNEL_SCHEME),
        id="frontchannel-logout-uri-http-on-a-public-host",
    ),
    pytest.param(
        {"frontchannelLogoutURI": "/logout"},
        Violation("spec.frontchannelLogoutURI", FRONTCHANNEL_SCHEME),
        id="frontchannel-logout-uri-relative",
    ),
    pytest.param(
        {"redirectURIs": None},
        Violation("spec.redirectURIs", CODE_NEEDS_REDIRECT),
        id="code-flow-without-redirect-uris",
    ),
    pytest.param(
        {"redirectURIs": [], "grantTypes": ["authorization_code", "client_credentials"]},
        Violation("spec.redirectURIs", CODE_NEEDS_REDIRECT),
        id="code-flow-with-an-empty-redirect-uri-list",
    ),
    pytest.param(
        {"grantTypes": ["refresh_token", "client_credentials"]},
        Violation("spec.grantTypes", REFRESH_NEEDS_CODE),
        id="refresh-token-without-code-flow",
    ),
    pytest.param(
        {"public": True},
        Violation("spec.tokenEndpointAuthMethod", PUBLIC_NEEDS_NONE),
        id="public-client-with-the-default-auth-method",
    ),
    pytest.param(
        {"tokenEndpointAuthMethod": contract.SERVICE_ACCOUNT_AUTH_METHOD},
        Violation("spec.serviceAccounts", SA_METHOD_NEEDS_ACCOUNTS),
        id="service-account-method-without-service-accounts",
    ),
    pytest.param(
        {"tokenEndpointAuthMethod": contract.SERVICE_ACCOUNT_AUTH_METHOD, "serviceAccounts": []},
        Violation("spec.serviceAccounts", SA_METHOD_NEEDS_ACCOUNTS),
        id="service-account-method-with-an-empty-list",
    ),
    pytest.param(
        {"serviceAccounts": ["billing"]},
        Violation("spec.tokenEndpointAuthMethod", ACCOUNTS_NEED_SA_METHOD),
        id="service-accounts-with-the-default-secret-method",
    ),
    pytest.param(
        {"serviceAccounts": ["Billing"], "tokenEndpointAuthMethod": contract.SERVICE_ACCOUNT_AUTH_METHOD},
        Violation(
            "spec.serviceAccounts[0]",
            "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
        ),
        id="service-account-name-that-kubernetes-refuses",
    ),
    pytest.param(
        key_client(jwks=None),
        Violation("spec.jwks", KEYS_NEED_ONE_SOURCE),
        id="private-key-jwt-without-keys",
    ),
    pytest.param(
        key_client(jwksURI="https://billing.example.com/jwks.json"),
        Violation("spec.jwks", KEYS_NEED_ONE_SOURCE),
        id="private-key-jwt-with-both-jwks-and-jwks-uri",
    ),
    pytest.param(
        {"jwksURI": "https://billing.example.com/jwks.json"},
        Violation("spec.tokenEndpointAuthMethod", KEYS_NEED_KEY_METHOD),
        id="jwks-uri-with-the-default-secret-method",
    ),
    pytest.param(
        {"jwks": {"keys": [PUBLIC_EC_KEY]}},
        Violation("spec.tokenEndpointAuthMethod", KEYS_NEED_KEY_METHOD),
        id="jwks-with-the-default-secret-method",
    ),
    pytest.param(
        {"tokenEndpointAuthSigningAlg": "ES256"},
        Violation("spec.tokenEndpointAuthSigningAlg", SIGNING_ALG_NEEDS_KEY_METHOD),
        id="signing-alg-with-the-default-secret-method",
    ),
    pytest.param(
        key_client(tokenEndpointAuthSigningAlg="HS256"),
        Violation(
            "spec.tokenEndpointAuthSigningAlg",
            'Unsupported value: "HS256": supported values: "RS256", "RS384", "RS512", "PS256", "PS384", '
            '"PS512", "ES256", "ES384", "ES512", "EdDSA"',
        ),
        id="signing-alg-symmetric",
    ),
    pytest.param(
        key_client(jwks=None, jwksURI="http://billing.example.com/jwks.json"),
        Violation("spec.jwksURI", JWKS_URI_SCHEME),
        id="jwks-uri-http-on-a-public-host",
    ),
    pytest.param(
        key_client(jwks=None, jwksURI="https://billing.example.com/jwks.json#keys"),
        Violation("spec.jwksURI", JWKS_URI_FRAGMENT),
        id="jwks-uri-with-fragment",
    ),
    pytest.param(
        key_client(jwks={"keys": [{**PUBLIC_EC_KEY, "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}),
        Violation("spec.jwks.keys[0]", PRIVATE_KEY),
        id="jwks-with-a-private-key",
    ),
    pytest.param(
        key_client(jwks={"keys": [{"kty": "oct", "kid": "shared", "k": "c2VjcmV0"}]}),
        Violation("spec.jwks.keys[0]", SYMMETRIC_KEY),
        id="jwks-with-a-symmetric-key",
    ),
    pytest.param(
        key_client(jwks={"keys": [PUBLIC_EC_KEY, {k: v for k, v in PUBLIC_EC_KEY.items() if k != "kid"}]}),
        Violation("spec.jwks.keys", KEYS_NEED_KIDS),
        id="jwks-with-several-keys-one-without-kid",
    ),
    pytest.param(
        key_client(jwks={"keys": [PUBLIC_EC_KEY, PUBLIC_EC_KEY]}),
        Violation("spec.jwks.keys", DISTINCT_KIDS),
        id="jwks-with-a-kid-twice",
    ),
    pytest.param(
        key_client(jwks={"keys": [{**PUBLIC_EC_KEY, "kid": str(n)} for n in range(9)]}),
        Violation("spec.jwks.keys", "Too many: 9: must have at most 8 items"),
        id="jwks-with-more-than-8-keys",
    ),
    pytest.param(
        {"tokenEndpointAuthMethod": "client_secret_jwt"},
        Violation(
            "spec.tokenEndpointAuthMethod",
            'Unsupported value: "client_secret_jwt": supported values: "client_secret_basic", '
            '"client_secret_post", "none", "kubernetes_service_account_jwt", "private_key_jwt"',
        ),
        id="client-secret-jwt-refused-on-purpose",
    ),
    pytest.param(
        {"public": True, "tokenEndpointAuthMethod": "client_secret_post"},
        Violation("spec.tokenEndpointAuthMethod", PUBLIC_NEEDS_NONE),
        id="public-client-authenticating-with-a-secret",
    ),
    pytest.param(
        {
            "public": True,
            "tokenEndpointAuthMethod": "none",
            "grantTypes": ["authorization_code", "client_credentials"],
        },
        Violation("spec.grantTypes", PUBLIC_NO_CLIENT_CREDENTIALS),
        id="public-client-with-client-credentials",
    ),
    pytest.param(
        {"tokenEndpointAuthMethod": "none"},
        Violation("spec.public", NONE_NEEDS_PUBLIC),
        id="auth-method-none-on-a-confidential-client",
    ),
    pytest.param(
        {"url": "ftp://files.example.com/"},
        Violation("spec.url", URL),
        id="url-not-http",
    ),
    pytest.param(
        {"secretTemplate": {"labels": {contract.MANAGED_BY_LABEL: "helm"}}},
        Violation("spec.secretTemplate.labels", TEMPLATE_LABELS),
        id="template-label-takes-the-manager-label",
    ),
    pytest.param(
        {"secretTemplate": {"labels": {contract.CLIENT_LABEL: "someone-else"}}},
        Violation("spec.secretTemplate.labels", TEMPLATE_LABELS),
        id="template-label-takes-the-client-label",
    ),
    pytest.param(
        {"secretTemplate": {"annotations": {contract.PREVIOUS_SECRET_HASH_ANNOTATION: "0" * 64}}},
        Violation("spec.secretTemplate.annotations", TEMPLATE_ANNOTATIONS),
        id="template-annotation-forges-the-previous-secret",
    ),
    pytest.param(
        {"secretTemplate": {"keys": {"clientSecret": contract.CLIENT_SECRET_KEY}}},
        Violation("spec.secretTemplate.keys.clientSecret", STANDARD_KEY),
        id="template-key-reuses-a-standard-key",
    ),
    pytest.param(
        {"secretTemplate": {"keys": {"clientID": "OIDC", "issuer": "OIDC"}}},
        Violation("spec.secretTemplate.keys", DIFFERENT_KEYS),
        id="template-keys-collide",
    ),
    pytest.param(
        {"grantTypes": ["implicit"]},
        Violation(
            "spec.grantTypes[0]",
            'Unsupported value: "implicit": supported values: '
            '"authorization_code", "refresh_token", "client_credentials", '
            '"urn:ietf:params:oauth:grant-type:device_code"',
        ),
        id="grant-type-implicit",
    ),
    pytest.param(
        {"redirectURIs": ["https://app.example.com/cb", "https://app.example.com/cb"]},
        Violation("spec.redirectURIs[1]", 'Duplicate value: "https://app.example.com/cb"'),
        id="redirect-uri-twice",
    ),
    pytest.param(
        {"redirectURIs": [f"https://app.example.com/cb/{n}" for n in range(101)]},
        Violation("spec.redirectURIs", "Too many: 101: must have at most 100 items"),
        id="more-than-100-redirect-uris",
    ),
    pytest.param(
        {"redirectURIs": ["https://app.example.com/" + "a" * 2048]},
        Violation("spec.redirectURIs[0]", "Too long: may not be more than 2048 characters"),
        id="redirect-uri-too-long",
    ),
    pytest.param(
        {"clientID": "short"},
        Violation("spec.clientID", "should match '^[A-Za-z0-9._~-]{8,128}$'"),
        id="client-id-too-short",
    ),
    pytest.param(
        {"clientID": "grafana/prod"},
        Violation("spec.clientID", "should match '^[A-Za-z0-9._~-]{8,128}$'"),
        id="client-id-with-a-slash",
    ),
    pytest.param(
        {"secretName": "Grafana_OIDC"},
        Violation(
            "spec.secretName",
            "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
        ),
        id="secret-name-not-a-dns-subdomain",
    ),
    pytest.param(
        {"secretRotation": {"gracePeriod": "1d"}},
        Violation("spec.secretRotation.gracePeriod", "should match '^([0-9]+(h|m|s))+$'"),
        id="grace-period-in-days",
    ),
    pytest.param(
        {"scopes": ["openid", "read write"]},
        Violation("spec.scopes[1]", "should match '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$'"),
        id="scope-with-a-space",
    ),
    pytest.param(
        {"redirectUris": ["https://grafana.example.com/cb"]},
        Violation("spec.redirectUris", "unknown field"),
        id="misspelt-field",
    ),
    pytest.param(
        {"accessTokenFormat": "reference"},
        Violation(
            "spec.accessTokenFormat", 'Unsupported value: "reference": supported values: "jwt", "opaque"'
        ),
        id="access-token-format-unknown",
    ),
    pytest.param(
        {"idTokenSignedResponseAlg": "HS256"},
        Violation(
            "spec.idTokenSignedResponseAlg",
            'Unsupported value: "HS256": supported values: "RS256", "ES256", "EdDSA"',
        ),
        id="id-token-alg-symmetric",
    ),
    pytest.param(
        {"accessTokenSignedResponseAlg": "none"},
        Violation(
            "spec.accessTokenSignedResponseAlg",
            'Unsupported value: "none": supported values: "RS256", "ES256", "EdDSA"',
        ),
        id="access-token-alg-none",
    ),
]


@pytest.mark.parametrize(("spec", "violation"), BAD_SPECS)
def test_bad_manifest_is_refused_with_the_intended_message(
    spec: dict[str, Any], violation: Violation
) -> None:
    assert validate_oidcclient(client(**spec)) == [violation]


def test_every_rule_of_the_crd_is_exercised_here() -> None:
    # cel-python finds an unknown function only when it runs a rule: each rule must run, and fail, here.
    exercised = {FRAGMENT, WILDCARD, SCHEME, LOGOUT_FRAGMENT, LOGOUT_WILDCARD, LOGOUT_SCHEME}
    exercised |= {CODE_NEEDS_REDIRECT, REFRESH_NEEDS_CODE, PUBLIC_NEEDS_NONE, PUBLIC_NO_CLIENT_CREDENTIALS}
    exercised |= {NONE_NEEDS_PUBLIC, CLIENT_ID_IMMUTABLE, CLIENT_ID_KEPT, URL, NAME_LENGTH, TEMPLATE_LABELS}
    exercised |= {
        TEMPLATE_ANNOTATIONS,
        STANDARD_KEY,
        DIFFERENT_KEYS,
        BACKCHANNEL_FRAGMENT,
        BACKCHANNEL_SCHEME,
        FRONTCHANNEL_FRAGMENT,
        FRONTCHANNEL_SCHEME,
    }
    exercised |= {SA_METHOD_NEEDS_ACCOUNTS, ACCOUNTS_NEED_SA_METHOD}
    exercised |= {KEYS_NEED_ONE_SOURCE, KEYS_NEED_KEY_METHOD, SIGNING_ALG_NEEDS_KEY_METHOD}
    exercised |= {JWKS_URI_FRAGMENT, JWKS_URI_SCHEME, KEYS_NEED_KIDS, DISTINCT_KIDS, SYMMETRIC_KEY}
    exercised |= {PRIVATE_KEY}
    messages = {rule["message"] for rule in all_rules(openapi_schema())}
    assert messages == exercised


def test_a_name_longer_than_a_label_value_is_refused() -> None:
    assert validate_oidcclient(client(name="a" * 64)) == [Violation("", NAME_LENGTH)]


def test_a_wrong_type_stops_the_rules_as_on_the_api_server() -> None:
    assert validate_oidcclient(client(public="yes", redirectURIs=None)) == [
        Violation("spec.public", "must be of type boolean, not string"),
        Violation("", RULES_NOT_CHECKED),
    ]


def test_another_kind_is_refused_before_the_schema() -> None:
    manifest = client()
    manifest["apiVersion"] = "kubeoidc.io/v1"
    assert validate_oidcclient(manifest) == [
        Violation("apiVersion", "must be kubeoidc.io/v1alpha1, not 'kubeoidc.io/v1'")
    ]


def test_a_manifest_without_a_name_is_refused() -> None:
    manifest = client()
    del manifest["metadata"]["name"]
    assert validate_oidcclient(manifest) == [
        Violation("metadata.name", "Required value"),
        Violation("", RULES_NOT_CHECKED),
    ]


def test_a_manifest_without_spec_is_refused() -> None:
    manifest = client()
    del manifest["spec"]
    assert validate_oidcclient(manifest) == [Violation("spec", "Required value")]


def test_loopback_and_private_use_redirect_uris_are_accepted() -> None:
    uris = [
        "http://localhost/callback",
        "http://localhost:8400/callback",
        "http://127.0.0.1:8400/callback?x=1",
        "http://[::1]:8400/callback",
        "https://[2001:db8::1]:8443/callback",
        "com.example.app:/oauth2redirect/example-provider",
    ]
    assert validate_oidcclient(client(redirectURIs=uris, postLogoutRedirectURIs=uris)) == []


def test_a_client_that_its_service_accounts_authenticate_is_accepted_without_redirect_uris() -> None:
    manifest = client(
        redirectURIs=None,
        grantTypes=["client_credentials"],
        tokenEndpointAuthMethod=contract.SERVICE_ACCOUNT_AUTH_METHOD,
        serviceAccounts=["billing", "billing-batch"],
    )

    assert validate_oidcclient(manifest) == []


def test_a_client_with_its_own_public_keys_inline_is_accepted_without_redirect_uris() -> None:
    rsa_key = {"kty": "RSA", "kid": "rsa-1", "alg": "PS256", "use": "sig", "n": "q" * 342, "e": "AQAB"}
    spec = key_client(jwks={"keys": [PUBLIC_EC_KEY, rsa_key]}, tokenEndpointAuthSigningAlg="ES256")

    assert validate_oidcclient(client(**spec)) == []


@pytest.mark.parametrize(
    "uri", ["https://billing.example.com/.well-known/jwks.json", "http://127.0.0.1:8400/jwks"]
)
def test_a_client_whose_keys_are_behind_a_jwks_uri_is_accepted(uri: str) -> None:
    assert validate_oidcclient(client(**key_client(jwks=None, jwksURI=uri))) == []


def test_custom_scopes_are_accepted() -> None:
    manifest = client(grantTypes=["client_credentials"], redirectURIs=None, scopes=["invoices:read"])
    assert validate_oidcclient(manifest) == []


# --- clientID, once set, stays ---------------------------------------------------------------------


def test_changing_the_client_id_is_refused() -> None:
    old = client(clientID="grafana-prod-1")
    assert validate_oidcclient(client(clientID="grafana-prod-2"), old) == [
        Violation("spec.clientID", CLIENT_ID_IMMUTABLE)
    ]


def test_removing_the_client_id_is_refused() -> None:
    old = client(clientID="grafana-prod-1")
    assert validate_oidcclient(client(), old) == [Violation("spec.clientID", CLIENT_ID_KEPT)]


def test_keeping_the_client_id_while_changing_the_rest_is_accepted() -> None:
    old = client(clientID="grafana-prod-1")
    new = client(clientID="grafana-prod-1", displayName="Grafana (prod)")
    assert validate_oidcclient(new, old) == []


def test_pinning_a_client_id_later_is_accepted() -> None:
    assert validate_oidcclient(client(clientID="grafana-prod-1"), client()) == []


def test_transition_rules_do_not_apply_on_create() -> None:
    assert validate_oidcclient(client(clientID="grafana-prod-1")) == []


# --- Defaults, YAML, status -------------------------------------------------------------------------


def test_defaults_are_applied_without_touching_the_input() -> None:
    manifest = client()
    original = copy.deepcopy(manifest)
    spec = apply_defaults(manifest)["spec"]
    assert manifest == original
    assert spec == {
        "redirectURIs": ["https://grafana.example.com/login/generic_oauth"],
        "grantTypes": ["authorization_code"],
        "public": False,
        "tokenEndpointAuthMethod": "client_secret_basic",
        "scopes": ["openid", "profile", "email"],
        "secretRotation": {"gracePeriod": "0s"},
        "accessTokenFormat": "jwt",
    }


def test_a_field_left_empty_in_yaml_counts_as_absent() -> None:
    (manifest,) = load_manifests(
        f"""
        apiVersion: {contract.API_VERSION}
        kind: {contract.KIND}
        metadata: {{name: billing-sync}}
        spec:
          grantTypes: [client_credentials]
          redirectURIs:
          secretRotation:
        """.replace("\n        ", "\n")
    )
    assert manifest["spec"]["redirectURIs"] is None
    assert validate_oidcclient(manifest) == []
    assert apply_defaults(manifest)["spec"]["secretRotation"] == {"gracePeriod": "0s"}


def test_load_manifests_reads_every_document_and_keeps_timestamps_as_strings() -> None:
    text = "---\n---\na: 2024-05-01T12:00:00Z\n---\nb: 1\n"
    assert load_manifests(text) == [{"a": "2024-05-01T12:00:00Z"}, {"b": 1}]


def test_load_manifests_refuses_a_document_that_is_not_a_mapping() -> None:
    with pytest.raises(ValueError, match="YAML document 2 is not a mapping"):
        load_manifests("a: 1\n---\n- b\n")


def test_checked_oidcclient_returns_the_defaulted_object_or_says_why_not() -> None:
    assert checked_oidcclient(client())["spec"]["grantTypes"] == ["authorization_code"]
    with pytest.raises(
        InvalidOIDCClient,
        match=r"^OIDCClient 'grafana' is invalid: spec\.public: tokenEndpointAuthMethod none ",
    ) as caught:
        checked_oidcclient(client(tokenEndpointAuthMethod="none"))
    assert caught.value.violations == (Violation("spec.public", NONE_NEEDS_PUBLIC),)


def test_a_status_the_operator_writes_is_valid() -> None:
    manifest = client()
    manifest["status"] = {
        "clientID": "Zb3kq9vQe2sXo1tP",
        "secretName": "grafana-oidc",
        "observedGeneration": 3,
        "rotation": {"lastValue": "2024-05-01", "lastTime": "2024-05-01T12:00:00Z"},
        "conditions": [
            {
                "type": contract.READY_CONDITION,
                "status": "True",
                "reason": "Reconciled",
                "message": "The Secret grafana-oidc holds the client's credentials.",
                "lastTransitionTime": "2024-05-01T12:00:00Z",
                "observedGeneration": 3,
            }
        ],
    }
    assert validate_oidcclient(manifest) == []


def test_a_condition_without_reason_or_with_a_bad_time_is_refused() -> None:
    manifest = client()
    manifest["status"] = {
        "conditions": [
            {"type": "Ready", "status": "False", "message": "", "lastTransitionTime": "yesterday"},
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reconciled",
                "message": "",
                "lastTransitionTime": "2024-05-01T12:00:00+02:00",
            },
        ]
    }
    assert validate_oidcclient(manifest) == [
        Violation("status.conditions[0].reason", "Required value"),
        Violation(
            "status.conditions[0].lastTransitionTime",
            "must be a date-time (RFC 3339), such as 2024-05-01T12:00:00Z",
        ),
        Violation("status.conditions[1]", 'Duplicate value: {"type": "Ready"}'),
    ]
