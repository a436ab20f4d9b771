"""Which Secret is an OIDCClient's, and which client IDs other OIDCClients hold: pure functions.

A Secret is a client's only if one of its ownerReferences has the client's uid and no other
ownerReference is a controller; labels prove nothing (anyone who can create a Secret can copy them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from kubeoidc_contract import API_VERSION, CLIENT_LABEL, GROUP, KIND

from .objects import mapping, metadata, string

#: The default Secret name is the OIDCClient's name with this suffix.
SECRET_NAME_SUFFIX: Final = "-oidc"


def secret_name(client: Mapping[str, Any]) -> str:
    """The name of the Secret the client wants: ``spec.secretName``, else ``<name>-oidc``."""
    name = string(mapping(client.get("spec")).get("secretName"))
    return name if name is not None else f"{metadata(client).get('name', '')}{SECRET_NAME_SUFFIX}"


def owner_reference(client: Mapping[str, Any]) -> dict[str, Any]:
    """The controller ownerReference that ties a Secret to its OIDCClient (and lets GC delete it)."""
    meta = metadata(client)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owner_references(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    refs = metadata(obj).get("ownerReferences")
    return [ref for ref in refs if isinstance(ref, Mapping)] if isinstance(refs, list) else []


def is_owned(secret: Mapping[str, Any], uid: str | None) -> bool:
    """Whether the Secret belongs to the OIDCClient with this uid (see the module docstring)."""
    if not uid:
        return False
    refs = owner_references(secret)
    ours = any(ref.get("uid") == uid for ref in refs)
    foreign_controller = any(ref.get("controller") is True and ref.get("uid") != uid for ref in refs)
    return ours and not foreign_controller


def owner_of(secret: Mapping[str, Any]) -> str | None:
    """The name of the OIDCClient a managed Secret points to: its controller, else its client label."""
    for ref in owner_references(secret):
        api_version = str(ref.get("apiVersion", ""))
        if ref.get("kind") == KIND and api_version.split("/")[0] == GROUP and ref.get("controller") is True:
            return string(ref.get("name"))
    return string(mapping(metadata(secret).get("labels")).get(CLIENT_LABEL))


def _age_key(client: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = metadata(client)
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta.get("name")))


def claimed_client_ids(client: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The client IDs other OIDCClients hold or have a prior claim on, each with ``namespace/name``.

    A client ID in another client's ``status.clientID`` is held by it (unless this client holds the same
    ID and is older: the older holder wins a race). A ``spec.clientID`` pinned by an older client is
    claimed by it, unless this client already holds that ID. Clients being deleted claim nothing.
    """
    meta = metadata(client)
    held = string(mapping(client.get("status")).get("clientID"))
    mine = _age_key(client)
    result: dict[str, str] = {}
    for other in others:
        other_meta = metadata(other)
        if other_meta.get("deletionTimestamp"):
            continue
        if (meta.get("uid") and other_meta.get("uid") == meta.get("uid")) or (
            other_meta.get("namespace") == meta.get("namespace")
            and other_meta.get("name") == meta.get("name")
        ):
            continue
        ref = f"{other_meta.get('namespace')}/{other_meta.get('name')}"
        older = _age_key(other) < mine
        other_held = string(mapping(other.get("status")).get("clientID"))
        if other_held is not None and (other_held != held or older):
            result.setdefault(other_held, ref)
        pinned = string(mapping(other.get("spec")).get("clientID"))
        if pinned is not None and pinned != held and older:
            result.setdefault(pinned, ref)
    return result
