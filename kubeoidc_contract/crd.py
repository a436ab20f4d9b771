"""The OIDCClient CustomResourceDefinition as data: the one place its defaults and enumerations live.

The CRD (``crds/oidcclient.yaml``, shipped in this package as ``crd/oidcclient.yaml``) is what a cluster
enforces, so it is the source: the lists and defaults below are read from it, never written again in
Python. The operator, the provider and the dev mode import them from here; a change to the CRD changes
them all. Reading it costs one YAML parse, done on first use.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import re
from collections.abc import Mapping
from typing import Any, cast

import yaml

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


@functools.cache
def _load(file_name: str) -> dict[str, Any]:
    resource = importlib.resources.files("kubeoidc_contract").joinpath("crd").joinpath(file_name)
    document = yaml.safe_load(resource.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TypeError(f"the packaged CRD {file_name} is not a YAML mapping")
    return document


def _crd() -> dict[str, Any]:
    return _load("oidcclient.yaml")


def _served(document: Mapping[str, Any]) -> dict[str, Any]:
    for version in document["spec"]["versions"]:
        if version["name"] == VERSION:
            return cast(dict[str, Any], version["schema"]["openAPIV3Schema"])
    raise LookupError(f"the packaged CRD {document['metadata']['name']} has no version {VERSION}")


@functools.cache
def _schema() -> dict[str, Any]:
    return _served(_crd())


def served_schema() -> Mapping[str, Any]:
    """The ``openAPIV3Schema`` of the served version, shared: read it, never change it."""
    return _schema()


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as shipped in the package (a fresh copy: mutate at will)."""
    return copy.deepcopy(_crd())


def openapi_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the served version (a fresh copy)."""
    return copy.deepcopy(_schema())


def _spec_field(*path: str) -> dict[str, Any]:
    node: dict[str, Any] = _schema()["properties"]["spec"]
    for name in path:
        node = node["items"] if name == "[]" else node["properties"][name]
    return node


@functools.cache
def grant_types() -> tuple[str, ...]:
    """``spec.grantTypes``' enumeration: every grant a client may be given."""
    return tuple(_spec_field("grantTypes", "[]")["enum"])


@functools.cache
def default_grant_types() -> frozenset[str]:
    return frozenset(_spec_field("grantTypes")["default"])


@functools.cache
def auth_methods() -> tuple[str, ...]:
    """``spec.tokenEndpointAuthMethod``'s enumeration, in the CRD's order (``none`` is for public clients)."""
    return tuple(_spec_field("tokenEndpointAuthMethod")["enum"])


@functools.cache
def default_auth_method() -> str:
    return str(_spec_field("tokenEndpointAuthMethod")["default"])


@functools.cache
def default_scopes() -> tuple[str, ...]:
    return tuple(_spec_field("scopes")["default"])


@functools.cache
def id_token_claims() -> tuple[str, ...]:
    """``spec.idTokenClaims``' enumeration: the scope claims an ID token may carry unasked."""
    return tuple(_spec_field("idTokenClaims", "[]")["enum"])


@functools.cache
def default_grace_period() -> str:
    return str(_spec_field("secretRotation", "gracePeriod")["default"])


@functools.cache
def access_token_formats() -> tuple[str, ...]:
    """``spec.accessTokenFormat``'s enumeration: ``jwt`` (RFC 9068) and ``opaque`` (a reference token)."""
    return tuple(_spec_field("accessTokenFormat")["enum"])


@functools.cache
def default_access_token_format() -> str:
    return str(_spec_field("accessTokenFormat")["default"])


@functools.cache
def spec_pattern(*path: str) -> re.Pattern[str]:
    """The compiled ``pattern`` of a spec field, e.g. ``spec_pattern("clientID")``."""
    return re.compile(_spec_field(*path)["pattern"])


# The IdentitySource CRD (``crds/identitysource.yaml``) ------------------------------------------------


def identity_source_crd() -> dict[str, Any]:
    """The IdentitySource CustomResourceDefinition as shipped (a fresh copy)."""
    return copy.deepcopy(_load("identitysource.yaml"))


def identity_source_schema() -> Mapping[str, Any]:
    """The IdentitySource ``openAPIV3Schema`` of the served version, shared: read it, never change it."""
    return _served(_load("identitysource.yaml"))


def identity_source_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An IdentitySource spec with the CRD's defaults filled in, as the API server stores it.

    Defaults apply where a field is absent and its parent object is present (structural defaulting):
    the dev mode and the tests then see exactly what a cluster would hand the provider.
    """
    node = identity_source_schema()["properties"]["spec"]
    return cast(dict[str, Any], _defaulted(copy.deepcopy(dict(spec)), node))


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
