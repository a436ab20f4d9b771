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
    "openapi_schema",
    "served_schema",
    "spec_pattern",
]


@functools.cache
def _crd() -> dict[str, Any]:
    resource = importlib.resources.files("kubeoidc_contract").joinpath("crd").joinpath("oidcclient.yaml")
    document = yaml.safe_load(resource.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TypeError("the packaged CRD is not a YAML mapping")
    return document


@functools.cache
def _schema() -> dict[str, Any]:
    for version in _crd()["spec"]["versions"]:
        if version["name"] == VERSION:
            return cast(dict[str, Any], version["schema"]["openAPIV3Schema"])
    raise LookupError(f"the packaged CRD has no version {VERSION}")


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
def default_grace_period() -> str:
    return str(_spec_field("secretRotation", "gracePeriod")["default"])


@functools.cache
def spec_pattern(*path: str) -> re.Pattern[str]:
    """The compiled ``pattern`` of a spec field, e.g. ``spec_pattern("clientID")``."""
    return re.compile(_spec_field(*path)["pattern"])
