"""What an OIDCClient's status says and which Events tell people about it.

Conditions (``status.conditions``):

``Ready``, the summary:
    ``True`` / ``Reconciled``: the Secret holds the client's credentials and matches the spec.
    ``False`` / ``SecretConflict``: a Secret of that name exists and this client does not own it; it
    is left untouched. ``False`` / ``ClientIDConflict``: the pinned ``spec.clientID`` is used by another
    OIDCClient (the older claim wins). ``False`` / ``InvalidSpec``: the spec has a value the CRD could
    not refuse (the message says which). In the three ``False`` cases no Secret is written.
``CredentialsRegenerated``, whether the current client secret replaced a lost one:
    ``True`` / ``SecretDeleted``: the Secret was deleted, so a new client secret was generated (the
    client ID is kept); applications holding the old secret must be given the new one.
    ``True`` / ``SecretValueInvalid``: the Secret's ``client_secret`` was missing or malformed and was
    replaced. ``False`` / ``Generated``: the credentials are those generated with the client.
    ``False`` / ``Rotated``: the secret was last changed on a rotation request (this acknowledges a
    regeneration). ``False`` / ``Recovered``: the status was lost and the credentials were read back
    from the Secret.

Events: ``SecretCreated``, ``SecretRotated``, ``SecretRestored``, ``SecretUpdated``, ``SecretMoved``,
``CredentialsRecovered``, ``RotationSkipped`` (Normal); ``CredentialsRegenerated``, and
``SecretConflict``, ``ClientIDConflict``, ``InvalidSpec`` when ``Ready`` turns to that reason (Warning).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from kubeoidc_contract import CLIENT_SECRET_KEY, READY_CONDITION, ROTATE_ANNOTATION, STATUS_CREDENTIALS

from .conditions import Condition, find_condition, format_time, set_conditions
from .desired import describe_patch
from .objects import ClientView, Inputs, mapping, string
from .rotation import CredentialsChange, rotation_requested

CREDENTIALS_CONDITION: Final = "CredentialsRegenerated"

# Ready reasons.
RECONCILED: Final = "Reconciled"
SECRET_CONFLICT: Final = "SecretConflict"
CLIENT_ID_CONFLICT: Final = "ClientIDConflict"
INVALID_SPEC: Final = "InvalidSpec"
# CredentialsRegenerated reasons.
SECRET_DELETED: Final = "SecretDeleted"
SECRET_VALUE_INVALID: Final = "SecretValueInvalid"
GENERATED: Final = "Generated"
ROTATED: Final = "Rotated"
RECOVERED: Final = "Recovered"

#: What the plan does with the Secret.
Action = Literal["create", "patch", "none"]
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the OIDCClient."""

    type: EventType
    reason: str
    message: str


def blocked_status(
    obj: ClientView, reason: str, message: str, now: datetime.datetime
) -> tuple[dict[str, Any], tuple[Event, ...]]:
    """Ready=False with this reason (nothing else is written), and a Warning when the reason is new."""
    old_ready = mapping(find_condition(obj.status.get("conditions"), READY_CONDITION))
    conditions = set_conditions(
        obj.status.get("conditions"),
        [Condition(READY_CONDITION, "False", reason, message)],
        generation=obj.generation,
        now=now,
    )
    # Credentials withdrawn: the provider serves no client that is not Ready.
    desired: dict[str, Any] = {"conditions": conditions, STATUS_CREDENTIALS: None}
    if obj.generation is not None:
        desired["observedGeneration"] = obj.generation
    is_new = old_ready.get("status") != "False" or old_ready.get("reason") != reason
    events = (Event("Warning", reason, message),) if is_new else ()
    return status_patch(obj.status, desired), events


def ready_status(
    inputs: Inputs,
    client_id: str,
    change: CredentialsChange,
    rotation_record: dict[str, str] | None,
    credentials: dict[str, str],
) -> dict[str, Any]:
    """The whole desired status of a client whose Secret holds its credentials; ``credentials`` is
    what the provider learns of them (see :mod:`.published`)."""
    ready = Condition(
        READY_CONDITION,
        "True",
        RECONCILED,
        f"Secret {inputs.name!r} holds the credentials of client ID {client_id!r}"
        + _no_secret_reason(inputs),
    )
    desired: dict[str, Any] = {
        "clientID": client_id,
        "secretName": inputs.name,
        STATUS_CREDENTIALS: credentials,
    }
    if inputs.obj.generation is not None:
        desired["observedGeneration"] = inputs.obj.generation
    if rotation_record is not None:
        desired["rotation"] = rotation_record
    desired["conditions"] = set_conditions(
        inputs.obj.status.get("conditions"),
        [ready, credentials_condition(inputs, change)],
        generation=inputs.obj.generation,
        now=inputs.now,
    )
    return desired


def credentials_condition(inputs: Inputs, change: CredentialsChange) -> Condition:
    at = format_time(inputs.now)
    if change == "deleted":
        return Condition(
            CREDENTIALS_CONDITION,
            "True",
            SECRET_DELETED,
            "No Secret owned by this OIDCClient held its client secret any more (it was deleted), "
            f"so a new client secret was written to Secret {inputs.name!r} at {at}; the client ID is "
            "unchanged. Applications must use the new secret.",
        )
    if change == "invalid":
        return Condition(
            CREDENTIALS_CONDITION,
            "True",
            SECRET_VALUE_INVALID,
            f"Secret {inputs.name!r} had no valid {CLIENT_SECRET_KEY}; a new client secret was written "
            f"at {at} (the client ID is unchanged). Applications must use the new secret.",
        )
    if change == "rotated":
        return Condition(
            CREDENTIALS_CONDITION,
            "False",
            ROTATED,
            f"The client secret was rotated at {at} for {ROTATE_ANNOTATION}={inputs.obj.rotate_value!r}.",
        )
    if change == "generated":
        return Condition(
            CREDENTIALS_CONDITION, "False", GENERATED, f"The credentials were generated at {at}."
        )
    old = find_condition(inputs.obj.status.get("conditions"), CREDENTIALS_CONDITION)
    if old is not None and old.get("status") in ("True", "False") and string(old.get("reason")):
        return Condition(CREDENTIALS_CONDITION, old["status"], old["reason"], str(old.get("message", "")))
    return Condition(
        CREDENTIALS_CONDITION,
        "False",
        RECOVERED,
        f"The credentials were read back from Secret {inputs.name!r} at {at}.",
    )


def plan_events(
    inputs: Inputs,
    client_id: str,
    id_origin: str,
    change: CredentialsChange,
    action: Action,
    patch: Mapping[str, Any] | None,
    delete: str | None,
) -> list[Event]:
    events: list[Event] = []
    if delete is not None:
        message = f"Moved the credentials from Secret {delete!r} to {inputs.name!r} and deleted {delete!r}."
        events.append(Event("Normal", "SecretMoved", message))
    elif change == "generated":
        events.append(
            Event("Normal", "SecretCreated", f"Created Secret {inputs.name!r} for client ID {client_id!r}.")
        )
    elif inputs.current is None and change != "deleted":
        events.append(
            Event(
                "Normal",
                "SecretRestored",
                f"Recreated the deleted Secret {inputs.name!r} (client ID unchanged).",
            )
        )
    if id_origin == "secret":
        events.append(
            Event(
                "Normal",
                "CredentialsRecovered",
                f"Read the client ID {client_id!r} back from Secret {inputs.name!r}.",
            )
        )
    if change in ("deleted", "invalid"):
        message = credentials_condition(inputs, change).message
        events.append(Event("Warning", "CredentialsRegenerated", message))
    elif change == "rotated":
        if inputs.grace > datetime.timedelta(0):
            until = f"stays valid until {format_time(inputs.now + inputs.grace)}"
        else:
            until = "is refused from now on"
        events.append(
            Event(
                "Normal",
                "SecretRotated",
                f"Rotated the client secret in Secret {inputs.name!r} for "
                f"{ROTATE_ANNOTATION}={inputs.obj.rotate_value!r}; the previous secret {until}.",
            )
        )
    if inputs.secretless and rotation_requested(inputs) and change != "generated":
        kind = (
            "A public client"
            if inputs.public
            else "A client authenticated by its own keys"
            if inputs.own_keys
            else "A client authenticated by ServiceAccount tokens"
        )
        events.append(
            Event(
                "Normal",
                "RotationSkipped",
                f"{kind} has no secret to rotate; recorded {inputs.obj.rotate_value!r}.",
            )
        )
    changed = describe_patch(patch or {})
    if action == "patch" and change == "kept" and changed:
        events.append(Event("Normal", "SecretUpdated", f"Updated Secret {inputs.name!r}: changed {changed}."))
    return events


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch for the fields of ``desired`` that differ; nested maps drop the keys not desired."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if current.get(key) == value:
            continue
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            patch[key] = {**{k: None for k in old if k not in value}, **value}
        else:
            patch[key] = value
    return patch


def _no_secret_reason(inputs: Inputs) -> str:
    """The end of the Ready message: why the Secret holds no client secret, if it holds none."""
    if inputs.public:
        return " (a public client has no secret)."
    if inputs.service_accounts:
        return " (its ServiceAccount tokens authenticate it: it has no secret)."
    if inputs.own_keys:
        return " (it signs its assertions with its own key, private_key_jwt: it has no secret)."
    return "."
