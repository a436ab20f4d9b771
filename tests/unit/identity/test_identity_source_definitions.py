"""Identity sources as data: specs with their Secrets, subjects, and the feed the watcher drives."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.identity.feed import SourceFeed
from kubeoidc_provider.identity.spec import LDAPDefinition, OIDCDefinition, SourceSpecError, parse_source
from kubeoidc_provider.identity.subjects import source_of, source_subject
from kubeoidc_provider.identity.upstream import UpstreamSource
from kubeoidc_provider.users import StaticUserDirectory, UserDirectoryError

OIDC_SPEC: dict[str, Any] = {
    "type": "OIDC",
    "oidc": {
        "issuer": "https://sso.example.com/",
        "clientID": "kubeoidc",
        "clientSecretRef": {"name": "sso"},
    },
}
LDAP_SPEC: dict[str, Any] = {
    "type": "LDAP",
    "ldap": {"url": "ldaps://ldap.example.com", "userSearch": {"baseDN": "ou=people,dc=example,dc=com"}},
}


def secrets(values: dict[tuple[str, str], str]) -> Any:
    return lambda name, key: values.get((name, key))


def test_an_oidc_spec_gets_the_crds_defaults_and_its_secret() -> None:
    definition = parse_source("sso", OIDC_SPEC, secrets({("sso", "clientSecret"): "s3cret\n"}))

    assert isinstance(definition, OIDCDefinition)
    assert definition.issuer == "https://sso.example.com"
    assert definition.client_secret == "s3cret"
    assert definition.scopes == ("openid", "profile", "email")
    assert (definition.username_claim, definition.groups_claim) == ("preferred_username", "groups")
    assert definition.display_name == "sso"
    assert "s3cret" not in repr(definition)


def test_an_ldap_spec_gets_the_crds_defaults() -> None:
    definition = parse_source("corp", LDAP_SPEC, secrets({}))

    assert isinstance(definition, LDAPDefinition)
    assert (definition.username_attribute, definition.id_attribute) == ("uid", "entryUUID")
    assert definition.timeout == 5
    assert definition.group_base_dn is None
    assert dict(definition.claim_attributes) == {
        "given_name": "givenName",
        "family_name": "sn",
        "nickname": "displayName",
        "website": "labeledURI",
        "locale": "preferredLanguage",
        "updated_at": "modifyTimestamp",
        "phone_number": "telephoneNumber",
    }
    assert definition.address_attributes == (
        ("formatted", "postalAddress"),
        ("street_address", "street"),
        ("locality", "l"),
        ("region", "st"),
        ("postal_code", "postalCode"),
        ("country", "c"),
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            OIDC_SPEC, "spec.oidc.clientSecretRef: the Secret 'sso' has no key 'clientSecret'", id="secret"
        ),
        pytest.param(
            {"type": "LDAP", "ldap": {**LDAP_SPEC["ldap"], "url": "ldap://ldap.example.com"}},
            "ldap:// without TLS",
            id="plain ldap",
        ),
        pytest.param(
            {"type": "LDAP", "ldap": {**LDAP_SPEC["ldap"], "bindDN": "cn=reader"}},
            "bindDN is set without spec.ldap.bindPasswordRef",
            id="bind without password",
        ),
        pytest.param({"type": "LDAP"}, "spec.type must be OIDC", id="no section"),
    ],
)
def test_a_source_that_cannot_be_used_says_which_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_source("broken", spec, secrets({}))


def test_subjects_are_stable_and_never_shared_between_sources() -> None:
    assert source_subject("a", "1") == source_subject("a", "1")
    assert source_subject("a", "1") != source_subject("b", "1")
    assert source_of(source_subject("corp", "x")) == "corp"
    assert source_of("6c1f4a52-static-user") is None


def test_a_static_user_id_cannot_look_like_a_source_subject() -> None:
    text = 'users:\n  - {username: eve, id: "corp|abc", passwordHash: "$2b$04$' + "a" * 53 + '"}\n'
    with pytest.raises(UserDirectoryError, match="must not contain '\\|'"):
        StaticUserDirectory.from_yaml(text)


def secret_object(name: str, namespace: str, **data: str) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"metadata": {"name": name, "namespace": namespace}, "data": encoded}


def test_the_feed_applies_sources_and_follows_their_secrets() -> None:
    catalog = SourceCatalog("https://login.example.com/callback")
    feed = SourceFeed(catalog, "kubeoidc")
    feed.replace_secrets([])
    feed.replace_sources([{"metadata": {"name": "sso", "namespace": "kubeoidc"}, "spec": OIDC_SPEC}])
    assert catalog.names() == set()
    assert "has no key" in catalog.problems()["sso"]

    feed.upsert_secret(secret_object("sso", "kubeoidc", clientSecret="first"))
    source = catalog.get("sso")
    assert isinstance(source, UpstreamSource)
    assert source.definition.client_secret == "first"

    feed.upsert_secret(secret_object("sso", "kubeoidc", clientSecret="rotated"))
    rotated = catalog.get("sso")
    assert isinstance(rotated, UpstreamSource)
    assert rotated.definition.client_secret == "rotated"

    feed.delete_source({"metadata": {"name": "sso", "namespace": "kubeoidc"}})
    assert catalog.names() == set()
