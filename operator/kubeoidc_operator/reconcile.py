"""What Secret and status an OIDCClient should have: pure decisions, no I/O, no kopf, no Kubernetes client.

:func:`plan` takes the OIDCClient and the Secrets the controller read (plain dicts, as the API serves
them) and returns a :class:`Plan`: the Secret to create or patch (if any), an old Secret to delete, the
status patch and the Events to post. The rules live beside this module, one concern each:

- ``ownership``: the Secret is this client's only if it is controller-owned by it; any other Secret
  of that name is never touched (``SecretConflict``); pinned client IDs claimed by others
  (``ClientIDConflict``);
- ``validation``: what the CRD could not refuse (``InvalidSpec``);
- ``rotation``: credentials generated once, then read back; regenerated when lost; rotated once per
  new value of the rotation annotation;
- ``desired``: the desired Secret and the merge patch from the current one;
- ``status``: the conditions and the Events.

A deleted Secret is recreated with the client ID from status and, as the secret itself is lost, a new
client secret (``CredentialsRegenerated``). A new ``spec.secretName`` moves the credentials to the new
Secret; the old one is deleted only if this client owns it. An unchanged object yields no write and no
Event.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .desired import desired_secret, secret_annotations, secret_patch
from .objects import ClientView, Inputs, metadata, string
from .ownership import is_owned, secret_name
from .published import published_credentials
from .rotation import CredentialGenerator, client_id, client_secret, rotation_record
from .status import (
    CLIENT_ID_CONFLICT,
    INVALID_SPEC,
    SECRET_CONFLICT,
    Action,
    Event,
    blocked_status,
    plan_events,
    ready_status,
    status_patch,
)
from .validation import validate


@dataclass(frozen=True)
class Plan:
    """What to do for one OIDCClient, in this order: write the Secret, delete the old one, patch status.

    ``secret`` is the complete desired Secret (None when the client is blocked by a conflict or an
    invalid spec: then nothing is written but status). ``secret_patch`` is the JSON merge patch that
    turns the current Secret into ``secret`` when ``action`` is ``"patch"``. ``status`` is a JSON merge
    patch for the status subresource, empty when status is already right.
    """

    action: Action = "none"
    secret: dict[str, Any] | None = None
    secret_patch: dict[str, Any] | None = None
    delete_secret: str | None = None
    status: dict[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()

    @property
    def writes(self) -> bool:
        """Whether applying the plan sends any write to the API."""
        return self.action != "none" or self.delete_secret is not None or bool(self.status)


def plan(
    client: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None = None,
    claimed: Mapping[str, str] | None = None,
    issuer: str,
    now: datetime.datetime,
    credentials: CredentialGenerator,
) -> Plan:
    """Decide what to do for ``client``.

    ``current`` is the Secret named by :func:`~.ownership.secret_name` (None if absent); ``previous`` the
    Secret named by ``status.secretName`` when that differs (None if absent or unchanged); ``claimed``
    maps the client IDs other OIDCClients hold or claim to their ``namespace/name`` (see
    :func:`~.ownership.claimed_client_ids`); ``issuer`` is written into the Secret; ``now`` is the
    current time (timezone-aware); ``credentials`` makes new client IDs and secrets.
    """
    if metadata(client).get("deletionTimestamp"):
        return Plan()  # Being deleted: the garbage collector removes the Secret with its owner.
    obj = ClientView.parse(client)
    problems = validate(client)
    if problems:
        return _blocked(obj, INVALID_SPEC, f"The spec cannot be applied: {'; '.join(problems)}.", now)
    pinned = string(obj.spec.get("clientID"))
    if pinned is not None and pinned in (claimed or {}):
        message = (
            f"The client ID {pinned!r} in spec.clientID is already used by OIDCClient "
            f"{(claimed or {})[pinned]}; no Secret was written. Choose another client ID."
        )
        return _blocked(obj, CLIENT_ID_CONFLICT, message, now)
    name = secret_name(client)
    if current is not None and not is_owned(current, obj.uid):
        message = (
            f"Secret {name!r} already exists and is not controlled by this OIDCClient; it was left "
            "untouched. Delete that Secret or set spec.secretName to another name."
        )
        return _blocked(obj, SECRET_CONFLICT, message, now)
    # The old Secret counts only if it is a different one and ours: never read or delete another's.
    if previous is not None and (
        string(metadata(previous).get("name")) == name or not is_owned(previous, obj.uid)
    ):
        previous = None
    return _write(Inputs(obj, client, name, current, previous, issuer, now), credentials, claimed or {})


def _blocked(obj: ClientView, reason: str, message: str, now: datetime.datetime) -> Plan:
    status, events = blocked_status(obj, reason, message, now)
    return Plan(status=status, events=events)


def _write(inputs: Inputs, credentials: CredentialGenerator, claimed: Mapping[str, str]) -> Plan:
    """The plan of a client that may write its Secret: credentials, Secret, status, Events."""
    the_id, id_origin = client_id(inputs, credentials)
    if id_origin == "secret" and the_id in claimed:
        # A Secret pre-created with another client's ID must not take that client offline.
        message = (
            f"The client ID {the_id!r} found in Secret {inputs.name!r} is already used by OIDCClient "
            f"{claimed[the_id]}; nothing was written. Delete that Secret to get a new client ID."
        )
        return _blocked(inputs.obj, CLIENT_ID_CONFLICT, message, inputs.now)
    the_secret, change = client_secret(inputs, credentials)
    record = rotation_record(inputs)
    annotations = secret_annotations(inputs, the_secret, change, record)
    desired = desired_secret(inputs, the_id, the_secret, annotations)
    published = published_credentials(the_id, the_secret, annotations)
    action: Action = "create"
    patch: dict[str, Any] | None = None
    if inputs.current is not None:
        patch = secret_patch(inputs.current, desired)
        action = "patch" if patch else "none"
    delete = string(metadata(inputs.previous).get("name"))
    return Plan(
        action=action,
        secret=desired,
        secret_patch=patch,
        delete_secret=delete,
        status=status_patch(inputs.obj.status, ready_status(inputs, the_id, change, record, published)),
        events=tuple(plan_events(inputs, the_id, id_origin, change, action, patch, delete)),
    )
