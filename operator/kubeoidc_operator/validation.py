"""What in an OIDCClient the CRD could not refuse but that makes its Secret impossible to write.

A cluster applies the CRD's schema and rules before the operator sees an object; these checks cover
the rest (Kubernetes' own rules for label keys and values, Secret names and keys) and every object the
CRD never saw (``kubeoidc dev`` checks manifests with the CRD too, tests feed objects directly). The
patterns the CRD has are read from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from kubeoidc_contract import (
    CLIENT_ID_KEY,
    CLIENT_LABEL,
    CLIENT_SECRET_KEY,
    GROUP,
    ISSUER_KEY,
    MANAGED_BY_LABEL,
    PRIVATE_KEY_JWT_AUTH_METHOD,
    ROTATE_ANNOTATION,
)
from kubeoidc_contract.crd import default_grace_period, spec_pattern
from kubeoidc_contract.durations import parse_duration

from .objects import mapping, string

#: The client ID a pinned ``spec.clientID`` or a Secret's ``client_id`` must match (the CRD's pattern).
CLIENT_ID: Final = spec_pattern("clientID")
_DNS_SUBDOMAIN: Final = spec_pattern("secretName")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
#: status.rotation.lastValue holds at most this many characters (the CRD's bound).
_MAX_ROTATION_VALUE: Final = 1024
#: ``spec.secretTemplate.keys``' fields, each naming another key for one of the standard values.
TEMPLATE_KEYS: Final = {"clientID": CLIENT_ID_KEY, "clientSecret": CLIENT_SECRET_KEY, "issuer": ISSUER_KEY}
#: JWK members that only a private or a symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
PRIVATE_JWK_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
#: The key types a client's public keys may have: asymmetric ones (``oct`` is a shared secret).
PUBLIC_KEY_TYPES: Final = ("RSA", "EC", "OKP")


def _is_label_key(key: object) -> bool:
    if not isinstance(key, str) or not key:
        return False
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


def _is_data_key(key: object) -> bool:
    """A Secret data key the API server accepts: its characters, and never ``.``, ``..`` or ``..``-prefixed
    (a key is a file name when the Secret is mounted)."""
    return isinstance(key, str) and bool(_DATA_KEY.match(key)) and key != "." and not key.startswith("..")


def validate(client: Mapping[str, Any]) -> list[str]:
    """What in the object makes it impossible to write its Secret, one phrase each (empty: nothing)."""
    problems: list[str] = []
    meta = mapping(client.get("metadata"))
    spec = client.get("spec")
    if not string(meta.get("uid")):
        problems.append("metadata.uid is missing, so the Secret cannot be owned by the OIDCClient")
    name = str(meta.get("name") or "")
    if len(name) > 63 or not _LABEL_VALUE.match(name):
        problems.append(
            f"metadata.name {name!r} cannot be the value of the {CLIENT_LABEL} label (at most 63 characters)"
        )
    rotate_value = mapping(meta.get("annotations")).get(ROTATE_ANNOTATION)
    if isinstance(rotate_value, str) and len(rotate_value) > _MAX_ROTATION_VALUE:
        problems.append(f"the annotation {ROTATE_ANNOTATION} is longer than {_MAX_ROTATION_VALUE} characters")
    if spec is not None and not isinstance(spec, Mapping):
        return [*problems, "spec must be an object"]
    spec = mapping(spec)
    if "secretName" in spec:
        value = spec["secretName"]
        if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            problems.append(f"spec.secretName {value!r} is not a valid Secret name")
    if "clientID" in spec:
        value = spec["clientID"]
        if not isinstance(value, str) or not CLIENT_ID.match(value):
            problems.append(f"spec.clientID {value!r} must be 8 to 128 letters, digits or . _ ~ -")
    if "public" in spec and not isinstance(spec["public"], bool):
        problems.append("spec.public must be true or false")
    rotation = spec.get("secretRotation")
    grace = mapping(rotation).get("gracePeriod", default_grace_period())
    if rotation is not None and not isinstance(rotation, Mapping):
        problems.append("spec.secretRotation must be an object")
    elif not isinstance(grace, str):
        problems.append("spec.secretRotation.gracePeriod must be a duration such as 0s, 10m, 24h or 1h30m")
    else:
        try:
            parse_duration(grace)
        except ValueError as exc:
            problems.append(f"spec.secretRotation.gracePeriod: {exc}")
    problems.extend(_validate_template(spec.get("secretTemplate")))
    problems.extend(_validate_frontchannel(spec))
    problems.extend(_validate_own_keys(spec))
    return problems


def _validate_own_keys(spec: Mapping[str, Any]) -> list[str]:
    """A ``private_key_jwt`` client names its public keys one way, and they are public and asymmetric:
    the provider must never be handed a key that could sign for the client."""
    own_keys = spec.get("tokenEndpointAuthMethod") == PRIVATE_KEY_JWT_AUTH_METHOD
    sources = [name for name in ("jwks", "jwksURI") if spec.get(name) is not None]
    if own_keys and len(sources) != 1:
        method = f"spec.tokenEndpointAuthMethod {PRIVATE_KEY_JWT_AUTH_METHOD}"
        return [f"{method} needs exactly one of jwks and jwksURI"]
    if not own_keys and sources:
        return [f"spec.{sources[0]} needs tokenEndpointAuthMethod {PRIVATE_KEY_JWT_AUTH_METHOD}"]
    if "jwks" not in sources:
        return []
    keys = mapping(spec["jwks"]).get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(key, Mapping) for key in keys):
        return ["spec.jwks.keys must be a non-empty list of JSON Web Keys"]
    problems: list[str] = []
    for index, key in enumerate(keys):
        private = [name for name in PRIVATE_JWK_MEMBERS if name in key]
        if key.get("kty") not in PUBLIC_KEY_TYPES:
            problems.append(f"spec.jwks.keys[{index}] is not an RSA, EC or OKP public key")
        elif private:
            problems.append(f"spec.jwks.keys[{index}] holds private members ({', '.join(private)})")
    return problems


def _origin(uri: str) -> tuple[str, str, int | None] | None:
    """Scheme, host and port of an absolute URI (the port left out when it is the scheme's default)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), parts.hostname.lower(), None if port == default else port


def _validate_frontchannel(spec: Mapping[str, Any]) -> list[str]:
    """Front-Channel Logout 1.0 §2: the logout page has the scheme, host and port of a redirect URI, so
    that the framed page belongs to the application the user signed in to. A CEL rule would have to
    parse every redirect URI; the CRD checks the URI's form, this its origin."""
    uri = spec.get("frontchannelLogoutURI")
    if not isinstance(uri, str) or not uri:
        return []
    redirect_uris = spec.get("redirectURIs")
    origins = (
        {_origin(u) for u in redirect_uris if isinstance(u, str)}
        if isinstance(redirect_uris, list)
        else set()
    )
    origin = _origin(uri)
    if origin is None or origin not in origins:
        return [
            "spec.frontchannelLogoutURI must have the scheme, host and port of one of spec.redirectURIs "
            "(Front-Channel Logout 1.0)"
        ]
    return []


def _validate_template(template: object) -> list[str]:
    if template is None:
        return []
    if not isinstance(template, Mapping):
        return ["spec.secretTemplate must be an object"]
    problems: list[str] = []
    for part in ("labels", "annotations"):
        items = template.get(part, {})
        if not isinstance(items, Mapping) or not all(isinstance(v, str) for v in items.values()):
            problems.append(f"spec.secretTemplate.{part} must map names to strings")
            continue
        for key, value in items.items():
            if not _is_label_key(key):
                problems.append(f"spec.secretTemplate.{part} has an invalid key {key!r}")
            elif key == MANAGED_BY_LABEL or key.startswith(f"{GROUP}/"):
                problems.append(f"spec.secretTemplate.{part} cannot set {key!r}: the operator sets it")
            elif part == "labels" and (len(value) > 63 or not _LABEL_VALUE.match(value)):
                problems.append(f"spec.secretTemplate.labels[{key!r}] has an invalid label value {value!r}")
    keys = template.get("keys", {})
    if not isinstance(keys, Mapping):
        return [*problems, "spec.secretTemplate.keys must be an object"]
    chosen: list[str] = []
    for field_name in TEMPLATE_KEYS:
        if field_name not in keys:
            continue
        value = keys[field_name]
        if not _is_data_key(value):
            problems.append(f"spec.secretTemplate.keys.{field_name} {value!r} is not a valid Secret key")
        elif value in TEMPLATE_KEYS.values() or value in chosen:
            problems.append(
                f"spec.secretTemplate.keys.{field_name} {value!r} names a key that is already written"
            )
        else:
            chosen.append(value)
    return problems
