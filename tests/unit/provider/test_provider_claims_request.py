"""The ``claims`` request parameter (OIDC Core §5.5) and the claims of the phone and address scopes."""

from __future__ import annotations

import json

import argon2
import pytest

from kubeoidc_provider.claims_request import ClaimsRequest, ClaimsRequestError, parse_claims_request
from kubeoidc_provider.metadata import CLAIMS_SUPPORTED
from kubeoidc_provider.users import StaticUserDirectory, User, UserDirectoryError

SUPPORTED = frozenset(CLAIMS_SUPPORTED)
HASH = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")


def test_essential_and_voluntary_claims_are_asked_per_target() -> None:
    request = parse_claims_request(
        json.dumps(
            {
                "id_token": {"email": {"essential": True}, "acr": {"values": ["urn:kubeoidc:acr:password"]}},
                "userinfo": {"name": None, "phone_number": {"essential": False}},
            }
        ),
        SUPPORTED,
    )
    assert request == ClaimsRequest(id_token=("email", "acr"), userinfo=("name", "phone_number"))


def test_unknown_claims_and_members_are_ignored() -> None:
    request = parse_claims_request('{"userinfo": {"shoe_size": null, "email": null}, "other": {}}', SUPPORTED)
    assert request == ClaimsRequest(userinfo=("email",))


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"userinfo": []}', '{"id_token": {"email": true}}', "{" + " " * 5000 + "}"],
)
def test_a_malformed_claims_parameter_is_refused(text: str) -> None:
    with pytest.raises(ClaimsRequestError):
        parse_claims_request(text, SUPPORTED)


def test_a_claims_request_survives_storage() -> None:
    request = ClaimsRequest(id_token=("email",), userinfo=("name",))
    assert ClaimsRequest.from_json(json.loads(json.dumps(request.to_json()))) == request
    assert ClaimsRequest.from_json(None) == ClaimsRequest()


def test_phone_and_address_scopes_release_what_the_user_has() -> None:
    directory = StaticUserDirectory.from_yaml(
        f"""
users:
  - username: carol
    id: carol-1
    phoneNumber: "+1 555 0100"
    phoneNumberVerified: true
    address: {{locality: Springfield, country: US}}
    passwordHash: "{HASH}"
  - username: dave
    id: dave-1
    passwordHash: "{HASH}"
"""
    )
    carol, dave = directory.get("carol-1"), directory.get("dave-1")
    assert isinstance(carol, User)
    assert isinstance(dave, User)
    assert carol.claims(["phone", "address"]) == {
        "sub": "carol-1",
        "phone_number": "+1 555 0100",
        "phone_number_verified": True,
        "address": {"locality": "Springfield", "country": "US"},
    }
    assert dave.claims(["phone", "address"]) == {"sub": "dave-1"}
    assert carol.claims(["openid"], extra=["phone_number"]) == {
        "sub": "carol-1",
        "phone_number": "+1 555 0100",
    }


def test_an_address_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(UserDirectoryError, match="address has unknown fields street"):
        StaticUserDirectory.from_yaml(
            f'users: [{{username: e, id: e-1, address: {{street: Main}}, passwordHash: "{HASH}"}}]'
        )
