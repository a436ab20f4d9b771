"""The Secret an OIDCClient should have, and the merge patch that turns the current one into it.

The desired Secret is complete: data (the standard keys, plus the extra key names of
``spec.secretTemplate.keys``), labels (the template's, then the manager and client labels), annotations
(the template's, then the rotation bookkeeping) and the controller ownerReference. A Secret edited by
hand is patched back to exactly that, except a well-formed ``client_secret``, which is kept (see
``rotation``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from kubeoidc_contract import (
    CLIENT_ID_KEY,
    CLIENT_LABEL,
    CLIENT_SECRET_KEY,
    ISSUER_KEY,
    MANAGED_BY_LABEL,
    MANAGER,
    PREVIOUS_SECRET_EXPIRES_ANNOTATION,
    PREVIOUS_SECRET_HASH_ANNOTATION,
)

from .conditions import format_time, parse_time
from .objects import Inputs, decode_data, encode, mapping, string
from .ownership import owner_reference, owner_references
from .rotation import ROTATED_FOR_ANNOTATION, CredentialsChange, secret_hash
from .validation import TEMPLATE_KEYS


def secret_annotations(
    inputs: Inputs, client_secret: str | None, change: CredentialsChange, record: dict[str, str] | None
) -> dict[str, str]:
    """The template's annotations, the rotation value honoured, and a running grace period's hash."""
    template = mapping(mapping(inputs.obj.spec.get("secretTemplate")).get("annotations"))
    annotations = {str(k): str(v) for k, v in template.items()}
    if record is not None and "lastValue" in record:
        annotations[ROTATED_FOR_ANNOTATION] = record["lastValue"]
    if client_secret is None:
        return annotations
    if change == "rotated" and inputs.grace > datetime.timedelta(0):
        old_secret = inputs.data[CLIENT_SECRET_KEY]
        annotations[PREVIOUS_SECRET_HASH_ANNOTATION] = secret_hash(old_secret)
        annotations[PREVIOUS_SECRET_EXPIRES_ANNOTATION] = format_time(inputs.now + inputs.grace)
    elif change == "kept":
        # A grace period still running is kept as it is; an expired one is dropped.
        old_hash = string(inputs.source_annotations.get(PREVIOUS_SECRET_HASH_ANNOTATION))
        old_expiry = string(inputs.source_annotations.get(PREVIOUS_SECRET_EXPIRES_ANNOTATION))
        expires = parse_time(old_expiry)
        if old_hash is not None and old_expiry is not None and expires is not None and expires > inputs.now:
            annotations[PREVIOUS_SECRET_HASH_ANNOTATION] = old_hash
            annotations[PREVIOUS_SECRET_EXPIRES_ANNOTATION] = old_expiry
    return annotations


def desired_secret(
    inputs: Inputs, client_id: str, client_secret: str | None, annotations: dict[str, str]
) -> dict[str, Any]:
    """The whole Secret the client should have."""
    template = mapping(inputs.obj.spec.get("secretTemplate"))
    values = {CLIENT_ID_KEY: client_id, ISSUER_KEY: inputs.issuer}
    if client_secret is not None:
        values[CLIENT_SECRET_KEY] = client_secret
    data = dict(values)
    for field_name, standard in TEMPLATE_KEYS.items():
        extra = string(mapping(template.get("keys")).get(field_name))
        if extra is not None and standard in values:
            data[extra] = values[standard]
    labels = {str(k): str(v) for k, v in mapping(template.get("labels")).items()}
    labels.update({MANAGED_BY_LABEL: MANAGER, CLIENT_LABEL: inputs.obj.name})
    metadata: dict[str, Any] = {"name": inputs.name, "namespace": inputs.obj.namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    metadata["ownerReferences"] = [owner_reference(inputs.client)]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {key: encode(value) for key, value in sorted(data.items())},
    }


def secret_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7396) that turns ``current`` into ``desired``; empty if they match.

    Labels, annotations and data keys not desired are removed (``null``); ownerReferences are replaced
    as a whole. Data is compared decoded, so an equivalent base64 spelling is no change. The patch
    carries the current ``resourceVersion``, so a concurrent change makes it fail with 409 instead
    of being overwritten.
    """
    cur_meta, want_meta = mapping(current.get("metadata")), mapping(desired.get("metadata"))
    meta_patch: dict[str, Any] = {}
    for part in ("labels", "annotations"):
        diff = _map_diff(mapping(cur_meta.get(part)), mapping(want_meta.get(part)))
        if diff:
            meta_patch[part] = diff
    if list(owner_references(current)) != list(owner_references(desired)):
        meta_patch["ownerReferences"] = want_meta.get("ownerReferences", [])
    cur_data, want_data = decode_data(current), decode_data(desired)
    raw_current = mapping(current.get("data"))
    data_patch: dict[str, Any] = {
        key: mapping(desired.get("data"))[key]
        for key, value in want_data.items()
        if cur_data.get(key) != value
    }
    data_patch.update({key: None for key in raw_current if key not in want_data})
    patch: dict[str, Any] = {}
    if meta_patch:
        patch["metadata"] = meta_patch
    if data_patch:
        patch["data"] = data_patch
    version = string(cur_meta.get("resourceVersion"))
    if patch and version is not None:
        patch.setdefault("metadata", {})["resourceVersion"] = version
    return patch


def _map_diff(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {key: value for key, value in desired.items() if current.get(key) != value}
    diff.update({key: None for key in current if key not in desired})
    return diff


def describe_patch(patch: Mapping[str, Any]) -> str:
    """What a Secret patch changes, for people (``labels; data client_id``); empty for bookkeeping only."""
    parts: list[str] = []
    meta = mapping(patch.get("metadata"))
    parts.extend(part for part in ("labels", "ownerReferences") if part in meta)
    if set(mapping(meta.get("annotations"))) - {ROTATED_FOR_ANNOTATION}:
        parts.append("annotations")
    if "data" in patch:
        parts.append("data " + ", ".join(sorted(mapping(patch.get("data")))))
    return "; ".join(parts)
