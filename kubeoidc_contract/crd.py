"""The OIDCClient CustomResourceDefinition as data: the one place its defaults and enumerations live.

The CRD (``crds/oidcclient.yaml``, shipped in this package as ``crd/oidcclient.yaml``) is what a cluster
enforces, so it is the source. The operator, the provider and the dev mode import its lists and defaults
from here. The served version's schema is parsed once, on first use, and only it is kept of the document
(of the IdentitySource CRD, only its defaults); ``crd()``, ``identity_source_crd()`` and
``identity_source_schema()`` parse the file again at each call and hand over a document of the caller's
own, to change at will (they serve the operator's start, the dev mode and the tests).

One exception: the enumerations and defaults the provider serves with (grant types, authentication
methods, scopes, ID token claims, access token formats) are also written below, so that a provider never
parses YAML at all (PyYAML and the parsed CRD would cost it about 1.5 MiB of memory).
``tests/unit/contract/test_contract.py`` reads each of them from the CRD file and fails on any difference:
a change to the CRD is made here too, or the tests say where.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from kubeoidc_contract import VERSION

__all__ = [
    "auth_methods",
    "crd",
    "default_auth_method",
    "default_grace_period",
    "default_grant_types",
    "default_scopes",
    "grant_types",
    "id_token_claims",
    "identity_source_crd",
    "identity_source_schema",
    "identity_source_spec",
    "openapi_schema",
    "served_schema",
    "spec_pattern",
]


# The provider's served values, as the CRD writes them (see the module's docstring) -------------------------

#: ``spec.grantTypes[]``' enumeration.
_GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
)
#: ``spec.grantTypes``' default.
_DEFAULT_GRANT_TYPES = frozenset({"authorization_code"})
#: ``spec.tokenEndpointAuthMethod``'s enumeration, in the CRD's order, and its default.
_AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "none",
    "kubernetes_service_account_jwt",
    "private_key_jwt",
)
_DEFAULT_AUTH_METHOD = "client_secret_basic"
#: ``spec.scopes``' default.
_DEFAULT_SCOPES = ("openid", "profile", "email")
#: ``spec.idTokenClaims[]``' enumeration.
_ID_TOKEN_CLAIMS = ("name", "preferred_username", "email", "email_verified", "groups")
#: ``spec.accessTokenFormat``'s enumeration and default.
_ACCESS_TOKEN_FORMATS = ("jwt", "opaque")
_DEFAULT_ACCESS_TOKEN_FORMAT = "jwt"


def _load(file_name: str) -> dict[str, Any]:
    """The packaged CRD, parsed afresh (PyYAML is loaded here, at the first parse, never before)."""
    import yaml

    # Beside this module (the package is installed as files), not through ``importlib.resources``, which
    # would load modules a provider has no other use for.
    resource = Path(__file__).parent / "crd" / file_name
    document = yaml.safe_load(resource.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TypeError(f"the packaged CRD {file_name} is not a YAML mapping")
    return document


def _served(document: Mapping[str, Any]) -> dict[str, Any]:
    for version in document["spec"]["versions"]:
        if version["name"] == VERSION:
            return cast(dict[str, Any], version["schema"]["openAPIV3Schema"])
    raise LookupError(f"the packaged CRD {document['metadata']['name']} has no version {VERSION}")


@functools.cache
def _schema() -> dict[str, Any]:
    # The served schema alone: the rest of the document (other versions, names, columns) is let go.
    return _served(_load("oidcclient.yaml"))


def served_schema() -> Mapping[str, Any]:
    """The ``openAPIV3Schema`` of the served version, shared: read it, never change it."""
    return _schema()


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as shipped in the package (parsed afresh: mutate at will)."""
    return _load("oidcclient.yaml")


def openapi_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the served version (a fresh copy)."""
    return copy.deepcopy(_schema())


def _spec_field(*path: str) -> dict[str, Any]:
    node: dict[str, Any] = _schema()["properties"]["spec"]
    for name in path:
        node = node["items"] if name == "[]" else node["properties"][name]
    return node


def grant_types() -> tuple[str, ...]:
    """``spec.grantTypes``' enumeration: every grant a client may be given."""
    return _GRANT_TYPES


def default_grant_types() -> frozenset[str]:
    return _DEFAULT_GRANT_TYPES


def auth_methods() -> tuple[str, ...]:
    """``spec.tokenEndpointAuthMethod``'s enumeration, in the CRD's order (``none`` is for public clients)."""
    return _AUTH_METHODS


def default_auth_method() -> str:
    return _DEFAULT_AUTH_METHOD


def default_scopes() -> tuple[str, ...]:
    return _DEFAULT_SCOPES


def id_token_claims() -> tuple[str, ...]:
    """``spec.idTokenClaims``' enumeration: the scope claims an ID token may carry unasked."""
    return _ID_TOKEN_CLAIMS


@functools.cache
def default_grace_period() -> str:
    return str(_spec_field("secretRotation", "gracePeriod")["default"])


def access_token_formats() -> tuple[str, ...]:
    """``spec.accessTokenFormat``'s enumeration: ``jwt`` (RFC 9068) and ``opaque`` (a reference token)."""
    return _ACCESS_TOKEN_FORMATS


def default_access_token_format() -> str:
    return _DEFAULT_ACCESS_TOKEN_FORMAT


@functools.cache
def spec_pattern(*path: str) -> re.Pattern[str]:
    """The compiled ``pattern`` of a spec field, e.g. ``spec_pattern("clientID")``."""
    return re.compile(_spec_field(*path)["pattern"])


# The IdentitySource CRD (``crds/identitysource.yaml``) ------------------------------------------------


def identity_source_crd() -> dict[str, Any]:
    """The IdentitySource CustomResourceDefinition as shipped (parsed afresh)."""
    return _load("identitysource.yaml")


def identity_source_schema() -> dict[str, Any]:
    """The IdentitySource ``openAPIV3Schema`` of the served version (parsed afresh)."""
    return _served(_load("identitysource.yaml"))


@functools.cache
def _identity_source_defaults() -> Mapping[str, Any]:
    # Of the schema, only the paths to a default: all that defaulting reads, a small part of the CRD.
    return _defaults_only(identity_source_schema()["properties"]["spec"]) or {}


def _defaults_only(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """``node`` cut down to its ``default``s and the ``properties`` and ``items`` that lead to one."""
    kept: dict[str, Any] = {}
    if "default" in node:
        kept["default"] = node["default"]
    properties = {
        name: pruned
        for name, child in node.get("properties", {}).items()
        if (pruned := _defaults_only(child)) is not None
    }
    if properties:
        kept["properties"] = properties
    items = _defaults_only(node["items"]) if "items" in node else None
    if items is not None:
        kept["items"] = items
    return kept or None


def identity_source_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An IdentitySource spec with the CRD's defaults filled in, as the API server stores it.

    Defaults apply where a field is absent and its parent object is present (structural defaulting):
    the dev mode and the tests then see exactly what a cluster would hand the provider.
    """
    return cast(dict[str, Any], _defaulted(copy.deepcopy(dict(spec)), _identity_source_defaults()))


def _defaulted(value: Any, node: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        for name, child in node.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                value[name] = _defaulted(value[name], child)
    elif isinstance(value, list) and "items" in node:
        return [_defaulted(item, node["items"]) for item in value]
    return value
