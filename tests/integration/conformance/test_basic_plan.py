"""The Basic OP and Config OP certification plans (oidcc-basic-certification-test-plan,
oidcc-config-certification-test-plan): a test per module, named after it.

``conformance.mjs basic`` plays every module once, in one Chromium, with npm ``openid-client`` as the
relying party (which checks state, iss, PKCE, nonce and each ID token's signature, iss, aud and exp);
each test asserts what its module checks, on what the relying party saw.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kubeoidc_contract import DEVICE_CODE_GRANT_TYPE, PRIVATE_KEY_JWT_AUTH_METHOD, SERVICE_ACCOUNT_AUTH_METHOD
from kubeoidc_provider.context import Provider
from kubeoidc_provider.metadata import CLAIMS_SUPPORTED
from support.conformance import ALL_SCOPES, plan_config, register_client
from support.device_approval import device_grant_succeeds
from support.provider import ALICE_PROFILE

pytestmark = [pytest.mark.node, pytest.mark.browser]

ALICE = "7b0c2f6e-alice"
BOB = "2d9e1a44-bob"


@pytest.fixture(scope="module")
def plan(provider: Provider, run_plan: Any) -> dict[str, Any]:
    clients = {
        "basic": register_client(provider, "basic"),
        "post": register_client(provider, "post", tokenEndpointAuthMethod="client_secret_post"),
        "signedUserinfo": register_client(provider, "signed-userinfo", userinfoSignedResponseAlg="RS256"),
        "public": register_client(provider, "public", public=True),
        "narrow": register_client(provider, "narrow", scopes=["openid", "profile"]),
        "machine": register_client(
            provider, "machine", grantTypes=["client_credentials"], scopes=["api:read"]
        ),
    }
    clients["signedUserinfo"]["metadata"] = {"userinfo_signed_response_alg": "RS256"}
    # A genuine ID token of this provider, for another user than the one signed in.
    bobs_id_token = provider.minter.id_token(
        client_id=clients["basic"]["clientId"],
        user_claims={"sub": BOB},
        auth_time=int(time.time()),
        nonce=None,
        access_token=None,
    )
    result: dict[str, Any] = run_plan(
        "basic", plan_config(provider, clients, otherUsersIdToken=bobs_id_token)
    )
    # Not a module of the certification plans: the device grant (RFC 8628), run by kubeoidc login's client.
    result["device"] = {"ok": device_grant_succeeds(provider)}
    return result


def signed_in(module: dict[str, Any]) -> dict[str, Any]:
    """The ID token claims of a module's flow that must have succeeded, after asserting it did."""
    assert module.get("callbackError") is None, module
    assert "exchange" not in module, module
    assert module["stateEchoed"] is True
    assert module["nonceEchoed"] is True
    claims: dict[str, Any] = module["idToken"]
    return claims


def refused_at_client(module: dict[str, Any], error: str) -> None:
    assert module["callbackError"] == error, module.get("errorDescription")
    assert module["stateEchoed"] is True
    assert "iss" in module["callbackParams"]


def test_oidcc_server(plan: dict[str, Any]) -> None:
    module = plan["oidcc-server"]
    claims = signed_in(module)
    assert module["seen"] == ["login", "consent"]
    assert claims["sub"] == ALICE
    assert {"iss", "aud", "exp", "iat", "auth_time", "sid", "acr", "amr"} <= set(claims)
    assert module["hasRefreshToken"] is True


def test_oidcc_idtoken_rs256(plan: dict[str, Any]) -> None:
    assert plan["oidcc-idtoken-rs256"]["header"]["alg"] == "RS256"


def test_oidcc_userinfo_get(plan: dict[str, Any]) -> None:
    module = plan["oidcc-userinfo-get"]
    assert module["ok"] is True
    assert module["value"]["sub"] == ALICE


def test_oidcc_userinfo_post_header(plan: dict[str, Any]) -> None:
    module = plan["oidcc-userinfo-post-header"]
    assert module["ok"] is True
    assert module["value"]["status"] == 200
    assert module["value"]["body"]["sub"] == ALICE


def test_oidcc_userinfo_post_body(plan: dict[str, Any]) -> None:
    module = plan["oidcc-userinfo-post-body"]
    assert module["ok"] is True
    assert module["value"]["status"] == 200
    assert module["value"]["body"]["sub"] == ALICE


def test_userinfo_with_a_bad_token_answers_the_rfc_6750_challenge(plan: dict[str, Any]) -> None:
    module = plan["oidcc-userinfo-bad-token"]
    assert module["ok"] is False
    assert module["error"] == "invalid_token"
    assert module["challenges"][0]["scheme"].lower() == "bearer"


def test_oidcc_userinfo_rs256(plan: dict[str, Any]) -> None:
    module = plan["oidcc-userinfo-rs256"]
    assert module["ok"] is True, module
    assert module["value"]["contentType"].startswith("application/jwt")
    assert module["value"]["header"]["alg"] == "RS256"
    assert module["value"]["claims"]["sub"] == ALICE


def test_oidcc_refresh_token(plan: dict[str, Any]) -> None:
    module = plan["oidcc-refresh-token"]
    assert module["refreshed"]["ok"] is True, module
    refreshed = module["refreshed"]["value"]
    assert refreshed["newRefreshToken"] is True
    assert refreshed["idToken"]["sub"] == module["first"]["sub"]
    assert refreshed["idToken"]["sid"] == module["first"]["sid"]


#: Alice's claims per scope, as userinfo must serve them (``support.provider.users_yaml``).
EMAIL = {"email": "alice@example.com", "email_verified": True}
ADDRESS = {
    "address": {
        "formatted": "1 Main Street, Springfield",
        "street_address": "1 Main Street",
        "locality": "Springfield",
        "country": "US",
    }
}
PHONE = {"phone_number": "+1 555 0100", "phone_number_verified": True}
#: What an ID token beside an access token leaves to userinfo (OIDC Core §5.4).
USERINFO_ONLY = {
    "given_name",
    "family_name",
    "updated_at",
    "address",
    "phone_number",
    "phone_number_verified",
}


def scope_module(plan: dict[str, Any], name: str, scope: str, claims: dict[str, Any]) -> None:
    """The module signed in, was granted ``scope``, and userinfo served exactly ``claims`` (and ``sub``)."""
    module = plan[name]
    signed_in(module)
    assert module["scope"] == scope
    assert module["userinfo"] == {"sub": ALICE, **claims}
    assert not USERINFO_ONLY & set(module["idToken"])


def test_op_scope_profile(plan: dict[str, Any]) -> None:
    scope_module(plan, "oidcc-scope-profile", "openid profile", ALICE_PROFILE)


def test_oidcc_scope_email(plan: dict[str, Any]) -> None:
    scope_module(plan, "oidcc-scope-email", "openid email", EMAIL)


def test_op_scope_address(plan: dict[str, Any]) -> None:
    scope_module(plan, "oidcc-scope-address", "openid address", ADDRESS)


def test_op_scope_phone(plan: dict[str, Any]) -> None:
    scope_module(plan, "oidcc-scope-phone", "openid phone", PHONE)


def test_op_scope_all(plan: dict[str, Any]) -> None:
    all_claims = {**ALICE_PROFILE, **EMAIL, **ADDRESS, **PHONE}
    scope_module(plan, "oidcc-scope-all", "openid profile email address phone", all_claims)


def test_unknown_scopes_are_ignored_and_the_granted_scope_is_reported(plan: dict[str, Any]) -> None:
    module = plan["op-scope-unknown-ignored"]
    claims = signed_in(module)
    assert module["scope"] == "openid email"
    assert claims["email"] == "alice@example.com"


def test_scopes_the_client_may_not_have_are_left_out_and_not_consented_to(plan: dict[str, Any]) -> None:
    module = plan["op-scope-not-the-clients-ignored"]
    signed_in(module)
    assert module["scope"] == "openid profile"
    consent = next(page for page in module["seenPages"] if page["page"] == "consent")
    assert consent["scopes"] == ["openid", "profile"]


def test_oidcc_ensure_other_scope_order_succeeds(plan: dict[str, Any]) -> None:
    module = plan["oidcc-ensure-other-scope-order-succeeds"]
    signed_in(module)
    assert {"email", "email_verified"} <= set(module["userinfo"])


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(plan: dict[str, Any]) -> None:
    claims = signed_in(plan["oidcc-ensure-request-without-nonce-succeeds-for-code-flow"])
    assert "nonce" not in claims


def test_oidcc_ensure_request_with_valid_pkce_succeeds(plan: dict[str, Any]) -> None:
    signed_in(plan["oidcc-ensure-request-with-valid-pkce-succeeds"])


def test_oidcc_display_page(plan: dict[str, Any]) -> None:
    signed_in(plan["oidcc-display-page"])


def test_oidcc_display_popup(plan: dict[str, Any]) -> None:
    signed_in(plan["oidcc-display-popup"])


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(plan: dict[str, Any]) -> None:
    signed_in(plan["oidcc-ensure-request-with-unknown-parameter-succeeds"])


def test_oidcc_ui_locales(plan: dict[str, Any]) -> None:
    signed_in(plan["oidcc-ui-locales"])


def test_oidcc_claims_locales(plan: dict[str, Any]) -> None:
    signed_in(plan["oidcc-claims-locales"])


def test_oidcc_ensure_request_with_acr_values_succeeds(plan: dict[str, Any]) -> None:
    claims = signed_in(plan["oidcc-ensure-request-with-acr-values-succeeds"])
    assert claims["acr"] == "urn:kubeoidc:acr:password"
    assert claims["amr"] == ["pwd"]


def test_oidcc_prompt_none_not_logged_in(plan: dict[str, Any]) -> None:
    module = plan["oidcc-prompt-none-not-logged-in"]
    refused_at_client(module, "login_required")
    assert module["seen"] == []


def test_oidcc_prompt_none_logged_in(plan: dict[str, Any]) -> None:
    module = plan["oidcc-prompt-none-logged-in"]
    assert signed_in(module)["sub"] == ALICE
    assert module["seen"] == []


def test_oidcc_id_token_hint(plan: dict[str, Any]) -> None:
    module = plan["oidcc-id-token-hint"]
    assert signed_in(module)["sub"] == ALICE
    assert module["seen"] == []


def test_id_token_hint_for_another_user_with_prompt_none_is_login_required(plan: dict[str, Any]) -> None:
    refused_at_client(plan["oidcc-id-token-hint-other-user"], "login_required")


def test_oidcc_max_age_10000(plan: dict[str, Any]) -> None:
    module = plan["oidcc-max-age-10000"]
    claims = signed_in(module)
    assert module["seen"] == []
    assert claims["auth_time"] == plan["authTimes"]["first"]


def test_oidcc_max_age_1(plan: dict[str, Any]) -> None:
    module = plan["oidcc-max-age-1"]
    claims = signed_in(module)
    assert module["seen"] == ["login"]
    assert claims["auth_time"] > plan["authTimes"]["first"]


def test_max_age_0_always_signs_in_again(plan: dict[str, Any]) -> None:
    module = plan["oidcc-max-age-0"]
    signed_in(module)
    assert module["seen"] == ["login"]


def test_oidcc_prompt_login(plan: dict[str, Any]) -> None:
    module = plan["oidcc-prompt-login"]
    claims = signed_in(module)
    assert module["seen"] == ["login"]
    assert claims["auth_time"] >= plan["authTimes"]["first"]
    assert claims["sub"] == ALICE


def test_prompt_select_account_shows_the_sign_in_page(plan: dict[str, Any]) -> None:
    module = plan["oidcc-prompt-select-account"]
    signed_in(module)
    assert module["seen"] == ["login"]


def test_prompt_consent_shows_the_consent_page_again(plan: dict[str, Any]) -> None:
    module = plan["oidcc-prompt-consent"]
    signed_in(module)
    assert module["seen"] == ["consent"]


def test_oidcc_login_hint(plan: dict[str, Any]) -> None:
    module = plan["oidcc-login-hint"]
    signed_in(module)
    assert module["seenPages"][0] == {"page": "login", "username": "alice"}


def test_oidcc_claims_essential(plan: dict[str, Any]) -> None:
    module = plan["oidcc-claims-essential"]
    claims = signed_in(module)  # scope openid alone: every other claim comes from the claims parameter
    assert module["userinfo"]["name"] == "Alice Example"
    assert claims["email"] == "alice@example.com"
    assert "name" not in claims


def test_oidcc_ensure_post_request_succeeds(plan: dict[str, Any]) -> None:
    signed_in(plan["oidcc-ensure-post-request-succeeds"])


def test_response_mode_form_post_posts_the_response_from_a_page_that_passes_the_page_checks(
    plan: dict[str, Any],
) -> None:
    module = plan["oidcc-response-mode-form-post"]
    signed_in(module)
    assert module["formPosted"] is True
    headers = module["pageHeaders"]
    policy = headers["content-security-policy"]
    assert "script-src 'nonce-" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert module["problems"] == []


def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    plan: dict[str, Any],
) -> None:
    refused_at_client(
        plan["oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported"],
        "request_not_supported",
    )


def test_oidcc_ensure_request_object_with_redirect_uri(plan: dict[str, Any]) -> None:
    refused_at_client(plan["oidcc-ensure-request-object-with-redirect-uri"], "request_not_supported")


def test_request_uri_is_refused_as_unsupported(plan: dict[str, Any]) -> None:
    refused_at_client(plan["oidcc-request-uri-unsigned"], "request_uri_not_supported")


def test_oidcc_response_type_missing(plan: dict[str, Any]) -> None:
    refused_at_client(plan["oidcc-response-type-missing"], "invalid_request")


def test_oidcc_ensure_registered_redirect_uri(plan: dict[str, Any]) -> None:
    module = plan["oidcc-ensure-registered-redirect-uri"]
    assert module["errorPage"]["path"].endswith("/authorize"), module
    assert "redirect" in module["errorPage"]["text"].lower()


def test_oidcc_ensure_redirect_uri_in_authorization_request(plan: dict[str, Any]) -> None:
    module = plan["oidcc-ensure-redirect-uri-in-authorization-request"]
    assert module["errorPage"]["path"].endswith("/authorize"), module


def test_oidcc_codereuse(plan: dict[str, Any]) -> None:
    replay = plan["oidcc-codereuse"]["replay"]
    assert replay["ok"] is False
    assert replay["error"] == "invalid_grant"


def test_oidcc_codereuse_30seconds(plan: dict[str, Any]) -> None:
    # The suite waits 30 s before the replay; a code is remembered as spent for its whole lifetime (60 s),
    # so the outcome is the same at once: the replay is refused and revokes what the code issued.
    module = plan["oidcc-codereuse-30seconds"]
    assert module["replay"]["error"] == "invalid_grant"
    assert module["userinfoWithFirstAccessToken"]["ok"] is False
    assert module["userinfoWithFirstAccessToken"]["error"] == "invalid_token"


def test_oidcc_server_client_secret_post(plan: dict[str, Any]) -> None:
    module = plan["oidcc-server-client-secret-post"]
    assert "exchange" not in module, module
    assert module["stateEchoed"] is True
    assert module["idToken"]["sub"] == ALICE


def test_oidcc_discovery_endpoint_verification(provider: Provider, plan: dict[str, Any]) -> None:
    """Config OP: the document names this issuer, and every claim and scope it lists was released."""
    document = json.loads(provider.discovery)
    assert document["issuer"] == provider.settings.issuer
    assert set(ALL_SCOPES) <= set(document["scopes_supported"])
    released: set[str] = set()
    for module in plan.values():
        if isinstance(module, dict):
            released |= set(module.get("idToken") or {}) | set(module.get("userinfo") or {})
    assert set(CLAIMS_SUPPORTED) <= released, set(CLAIMS_SUPPORTED) - released


def test_the_provider_refuses_nothing_discovery_says_it_supports(
    provider: Provider, plan: dict[str, Any]
) -> None:
    """Walks discovery: every value it offers was used by a request of this run that succeeded."""
    document = json.loads(provider.discovery)
    succeeded = [
        module
        for module in plan.values()
        if isinstance(module, dict) and module.get("idToken") and "exchange" not in module
    ]

    def used(parameter: str) -> set[str]:
        return {value for module in succeeded for value in module["request"].get(parameter, "").split()}

    assert set(document["scopes_supported"]) <= used("scope")
    assert set(document["prompt_values_supported"]) <= used("prompt")
    assert set(document["display_values_supported"]) <= used("display")
    assert set(document["response_modes_supported"]) <= used("response_mode")
    assert set(document["acr_values_supported"]) <= used("acr_values")
    assert set(document["response_types_supported"]) <= used("response_type")
    assert set(document["code_challenge_methods_supported"]) <= used("code_challenge_method")
    # A ServiceAccount token needs a cluster to sign it: that method succeeds in
    # tests/unit/provider/test_provider_service_account_clients.py and on a real API server (tests/cluster/).
    # private_key_jwt needs a key the client holds: openid-client succeeds with it, in Chromium too, in
    # tests/integration/relying_parties/test_op_clientauth_privatejwt.py.
    played_elsewhere = {SERVICE_ACCOUNT_AUTH_METHOD, PRIVATE_KEY_JWT_AUTH_METHOD}
    offered_here = set(document["token_endpoint_auth_methods_supported"]) - played_elsewhere
    assert offered_here <= {m["authMethod"] for m in succeeded}
    assert used("claims")  # claims_parameter_supported
    assert document["claims_parameter_supported"] is True
    # The plan signs userinfo with the default algorithm; the others each sign userinfo, ID tokens and
    # access tokens in tests/unit/provider/test_provider_token_choices.py, ID tokens also for
    # openid-client (tests/integration/relying_parties/test_openid_client.py).
    assert document["userinfo_signing_alg_values_supported"] == [
        plan["oidcc-userinfo-rs256"]["value"]["header"]["alg"],
        "ES256",
        "EdDSA",
    ]
    grants = {"authorization_code"} | (
        {"refresh_token"} if plan["oidcc-refresh-token"]["refreshed"]["ok"] else set()
    )
    if plan["client-credentials"]["ok"]:
        grants.add("client_credentials")
    if plan["device"]["ok"]:
        grants.add(DEVICE_CODE_GRANT_TYPE)
    assert set(document["grant_types_supported"]) <= grants
    assert document["request_parameter_supported"] is False
    assert document["request_uri_parameter_supported"] is False
