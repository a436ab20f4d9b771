"""An IdentitySource resource (with the CRD's defaults) and its Secrets, as a definition the provider uses.

What the CRD checks is not checked again; what it cannot check (a referenced Secret or key that does
not exist, a CA bundle that is not PEM) is a :class:`SourceSpecError` whose message names the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kubeoidc_contract as contract
from kubeoidc_contract.crd import identity_source_spec

__all__ = ["LDAPDefinition", "OIDCDefinition", "SecretLookup", "SourceSpecError", "parse_source"]

#: Reads one key of a Secret in the provider's namespace: ``(name, key)`` to its text, or ``None``.
SecretLookup = Callable[[str, str], str | None]


class SourceSpecError(ValueError):
    """The source cannot be used as written; the message names the field and what to change."""


@dataclass(frozen=True, slots=True)
class OIDCDefinition:
    """An upstream OpenID Provider (``spec.oidc``)."""

    name: str
    display_name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    username_claim: str
    email_claim: str
    name_claim: str
    groups_claim: str
    use_userinfo: bool
    allowed_domains: tuple[str, ...]
    required_groups: tuple[str, ...]

    def __repr__(self) -> str:  # the secret never reaches a log through a repr
        return f"OIDCDefinition(name={self.name!r}, issuer={self.issuer!r}, client_id={self.client_id!r})"


@dataclass(frozen=True, slots=True)
class LDAPDefinition:
    """An LDAP or Active Directory server (``spec.ldap``)."""

    name: str
    display_name: str
    url: str
    start_tls: bool
    insecure_no_tls: bool
    ca_pem: str | None
    bind_dn: str | None
    bind_password: str | None
    timeout: int
    user_base_dn: str
    user_filter: str
    username_attribute: str
    id_attribute: str
    email_attribute: str
    name_attribute: str
    group_base_dn: str | None
    group_filter: str
    group_member_attribute: str
    group_name_attribute: str
    #: (claim, attribute) for the profile claims and ``phone_number`` the entry's attributes hold.
    claim_attributes: tuple[tuple[str, str], ...] = ()
    #: (member of ``address``, attribute), in OIDC Core §5.1.1 order.
    address_attributes: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"LDAPDefinition(name={self.name!r}, url={self.url!r}, bind_dn={self.bind_dn!r})"


Definition = OIDCDefinition | LDAPDefinition


def parse_source(name: str, spec: Mapping[str, Any], secrets: SecretLookup) -> Definition:
    """The definition of the IdentitySource ``name``; its Secrets are read through ``secrets``."""
    full = identity_source_spec(spec)
    display_name = str(full.get("displayName") or name)
    if full.get("type") == contract.SOURCE_OIDC and isinstance(full.get("oidc"), dict):
        return _oidc(name, display_name, full["oidc"], secrets)
    if full.get("type") == contract.SOURCE_LDAP and isinstance(full.get("ldap"), dict):
        return _ldap(name, display_name, full["ldap"], secrets)
    raise SourceSpecError("spec.type must be OIDC (with spec.oidc) or LDAP (with spec.ldap)")


def _oidc(name: str, display_name: str, oidc: Mapping[str, Any], secrets: SecretLookup) -> OIDCDefinition:
    claims = oidc["claims"]
    scopes = tuple(dict.fromkeys(["openid", *oidc.get("scopes", ())]))
    return OIDCDefinition(
        name=name,
        display_name=display_name,
        issuer=str(oidc["issuer"]).rstrip("/"),
        client_id=str(oidc["clientID"]),
        client_secret=_secret(oidc["clientSecretRef"], "spec.oidc.clientSecretRef", secrets),
        scopes=scopes,
        username_claim=str(claims["username"]),
        email_claim=str(claims["email"]),
        name_claim=str(claims["name"]),
        groups_claim=str(claims["groups"]),
        use_userinfo=bool(oidc["useUserinfo"]),
        allowed_domains=tuple(d.lower().lstrip("@") for d in oidc.get("allowedDomains", ())),
        required_groups=tuple(oidc.get("requiredGroups", ())),
    )


def _ldap(name: str, display_name: str, ldap: Mapping[str, Any], secrets: SecretLookup) -> LDAPDefinition:
    url = str(ldap["url"])
    if url.startswith("ldap://") and not ldap.get("startTLS") and not ldap.get("insecureNoTLS"):
        raise SourceSpecError(
            "spec.ldap.url is ldap:// without TLS: use ldaps://, or set startTLS "
            "(insecureNoTLS only for tests: passwords would travel in clear)"
        )
    ca_pem = (
        _secret(ldap["caSecretRef"], "spec.ldap.caSecretRef", secrets) if ldap.get("caSecretRef") else None
    )
    if ca_pem is not None and "-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise SourceSpecError("spec.ldap.caSecretRef does not hold a PEM certificate")
    bind_password = None
    if ldap.get("bindPasswordRef"):
        bind_password = _secret(ldap["bindPasswordRef"], "spec.ldap.bindPasswordRef", secrets)
    if ldap.get("bindDN") and bind_password is None:
        raise SourceSpecError("spec.ldap.bindDN is set without spec.ldap.bindPasswordRef")
    users, groups = ldap["userSearch"], ldap.get("groupSearch") or {}
    return LDAPDefinition(
        name=name,
        display_name=display_name,
        url=url,
        start_tls=bool(ldap["startTLS"]),
        insecure_no_tls=bool(ldap["insecureNoTLS"]),
        ca_pem=ca_pem,
        bind_dn=str(ldap["bindDN"]) if ldap.get("bindDN") else None,
        bind_password=bind_password,
        timeout=int(ldap["timeoutSeconds"]),
        user_base_dn=str(users["baseDN"]),
        user_filter=str(users["filter"]),
        username_attribute=str(users["usernameAttribute"]),
        id_attribute=str(users["idAttribute"]),
        email_attribute=str(users["emailAttribute"]),
        name_attribute=str(users["nameAttribute"]),
        group_base_dn=str(groups["baseDN"]) if groups else None,
        group_filter=str(groups.get("filter", "")),
        group_member_attribute=str(groups.get("memberAttribute", "")),
        group_name_attribute=str(groups.get("nameAttribute", "")),
        claim_attributes=_mapped(users["claimAttributes"], LDAP_CLAIM_FIELDS),
        address_attributes=_mapped(users["claimAttributes"]["address"], LDAP_ADDRESS_FIELDS),
    )


#: ``claimAttributes``' fields and the claims they fill.
LDAP_CLAIM_FIELDS = {
    "givenName": "given_name", "familyName": "family_name", "middleName": "middle_name",
    "nickname": "nickname", "profile": "profile", "picture": "picture", "website": "website",
    "gender": "gender", "birthdate": "birthdate", "zoneinfo": "zoneinfo", "locale": "locale",
    "updatedAt": "updated_at", "phoneNumber": "phone_number",
}  # fmt: skip
#: ``claimAttributes.address``' fields and the members of ``address`` they fill.
LDAP_ADDRESS_FIELDS = {
    "formatted": "formatted", "streetAddress": "street_address", "locality": "locality",
    "region": "region", "postalCode": "postal_code", "country": "country",
}  # fmt: skip


def _mapped(fields: Mapping[str, Any], names: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(claim, attribute) for each field given an attribute; an empty one leaves its claim out."""
    return tuple((claim, str(fields[field])) for field, claim in names.items() if fields.get(field))


def _secret(ref: Mapping[str, Any], field: str, secrets: SecretLookup) -> str:
    name, key = str(ref["name"]), str(ref["key"])
    value = secrets(name, key)
    if value is None:
        raise SourceSpecError(f"{field}: the Secret {name!r} has no key {key!r} (or does not exist)")
    return value.strip()
