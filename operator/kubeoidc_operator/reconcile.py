"""What Secret and status an OIDCClient should have: pure decisions, no I/O, no kopf, no Kubernetes client.

:func:`plan` takes the OIDCClient and the Secrets the controller read (plain dicts, as the API serves
them) and returns a :class:`Plan`: the Secret to create or patch (if any), an old Secret to delete, the
status patch and the Events to post. The rules:

- Credentials are generated once (client ID: ``spec.clientID`` if pinned, else random; client secret:
  ``secrets.token_urlsafe(32)``, 256 bits), then read back from the Secret. The client ID is also kept
  in ``status.clientID`` (it wins over a hand-edited Secret); the client secret lives only in the
  Secret: a well-formed value found there is always kept.
- The Secret is this client's only if one of its ownerReferences has the client's uid and no other
  ownerReference is a controller. Any other Secret of that name is never touched (``SecretConflict``).
- Rotation: the annotation ``kubeoidc.io/rotate-secret`` rotates the secret once per new value. The
  values already honoured are ``status.rotation.lastValue`` and the Secret's ``kubeoidc.io/rotated-for``
  annotation (written in the same request as the new secret, so a failed status write or a lost
  status never rotates twice). A value present when the credentials are first generated is recorded
  without rotating: the secret is brand new anyway.
- A deleted Secret is recreated with the client ID from status and, as the secret itself is lost, a new
  client secret (``CredentialsRegenerated``). A Secret edited by hand is patched back: data, labels,
  annotations and ownerReferences are exactly the desired ones, except a well-formed ``client_secret``,
  which is kept; a missing or malformed one is replaced (``CredentialsRegenerated``).
- A new ``spec.secretName`` moves the credentials to the new Secret; the old one is deleted only if
  this client owns it.

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
An unchanged object yields no write and no Event.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from kubeoidc.contract import (
    API_VERSION,
    CLIENT_ID_KEY,
    CLIENT_LABEL,
    CLIENT_SECRET_KEY,
    GROUP,
    ISSUER_KEY,
    KIND,
    MANAGED_BY_LABEL,
    MANAGER,
    PREVIOUS_SECRET_EXPIRES_ANNOTATION,
    PREVIOUS_SECRET_HASH_ANNOTATION,
    READY_CONDITION,
    ROTATE_ANNOTATION,
)

from .conditions import Condition, find_condition, format_time, parse_time, set_conditions

#: The default Secret name is the OIDCClient's name with this suffix.
SECRET_NAME_SUFFIX: Final = "-oidc"
#: On the Secret: the rotation value its client secret honours (operator-internal bookkeeping).
ROTATED_FOR_ANNOTATION: Final = f"{GROUP}/rotated-for"
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

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{8,128}$")
# token_urlsafe(32) gives 43 characters; anything at least as long in that alphabet has 256 bits or more.
_CLIENT_SECRET = re.compile(r"^[A-Za-z0-9_-]{43,512}$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_DURATION = re.compile(r"^(?:\d+[hms])+$")
_DURATION_PART = re.compile(r"(\d+)([hms])")
_UNITS: Final = {"h": 3600, "m": 60, "s": 1}
#: status.rotation.lastValue holds at most this many characters (the CRD's bound).
_MAX_ROTATION_VALUE: Final = 1024
_TEMPLATE_KEYS: Final = {"clientID": CLIENT_ID_KEY, "clientSecret": CLIENT_SECRET_KEY, "issuer": ISSUER_KEY}

Action = Literal["create", "patch", "none"]
EventType = Literal["Normal", "Warning"]
CredentialsChange = Literal["generated", "kept", "rotated", "deleted", "invalid"]


class CredentialGenerator(Protocol):
    """Makes new credentials; tests pass a deterministic one."""

    def client_id(self) -> str: ...

    def client_secret(self) -> str: ...


class RandomCredentials:
    """Credentials from :mod:`secrets`: a 128-bit hex client ID and a 256-bit URL-safe client secret."""

    def client_id(self) -> str:
        return secrets.token_hex(16)

    def client_secret(self) -> str:
        return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the OIDCClient."""

    type: EventType
    reason: str
    message: str


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


# --- Small helpers on API objects -------------------------------------------------------------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def secret_name(client: Mapping[str, Any]) -> str:
    """The name of the Secret the client wants: ``spec.secretName``, else ``<name>-oidc``."""
    spec = _mapping(client.get("spec"))
    name = _string(spec.get("secretName"))
    return (
        name
        if name is not None
        else f"{_mapping(client.get('metadata')).get('name', '')}{SECRET_NAME_SUFFIX}"
    )


def owner_reference(client: Mapping[str, Any]) -> dict[str, Any]:
    """The controller ownerReference that ties a Secret to its OIDCClient (and lets GC delete it)."""
    meta = _mapping(client.get("metadata"))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owner_references(secret: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    refs = _mapping(secret.get("metadata")).get("ownerReferences")
    return [ref for ref in refs if isinstance(ref, Mapping)] if isinstance(refs, list) else []


def is_owned(secret: Mapping[str, Any], uid: str | None) -> bool:
    """Whether the Secret belongs to the OIDCClient with this uid.

    It does if one ownerReference has that uid and no ownerReference with another uid is a controller.
    Labels prove nothing: anyone who can create a Secret can copy them.
    """
    if not uid:
        return False
    refs = _owner_references(secret)
    ours = any(ref.get("uid") == uid for ref in refs)
    foreign_controller = any(ref.get("controller") is True and ref.get("uid") != uid for ref in refs)
    return ours and not foreign_controller


def owner_of(secret: Mapping[str, Any]) -> str | None:
    """The name of the OIDCClient a managed Secret points to: its controller, else its client label."""
    for ref in _owner_references(secret):
        api_version = str(ref.get("apiVersion", ""))
        if ref.get("kind") == KIND and api_version.split("/")[0] == GROUP and ref.get("controller") is True:
            return _string(ref.get("name"))
    return _string(_mapping(_mapping(secret.get("metadata")).get("labels")).get(CLIENT_LABEL))


def decode_data(secret: Mapping[str, Any] | None) -> dict[str, str]:
    """The Secret's ``data``, decoded; values that are not base64 of UTF-8 text are left out."""
    result: dict[str, str] = {}
    for key, value in _mapping(secret.get("data") if secret is not None else None).items():
        if not isinstance(value, str):
            continue
        try:
            result[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
    return result


def _encode(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def parse_duration(text: str) -> datetime.timedelta:
    """A duration such as ``0s``, ``10m``, ``24h`` or ``1h30m`` (Go-style; hours, minutes, seconds)."""
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration such as 0s, 10m, 24h or 1h30m")
    seconds = sum(int(amount) * _UNITS[unit] for amount, unit in _DURATION_PART.findall(text))
    return datetime.timedelta(seconds=seconds)


def secret_hash(client_secret: str) -> str:
    """The SHA-256 (hex) the Secret keeps of a previous client secret during a grace period."""
    return hashlib.sha256(client_secret.encode("utf-8")).hexdigest()


def _age_key(client: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = _mapping(client.get("metadata"))
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta.get("name")))


def claimed_client_ids(client: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The client IDs other OIDCClients hold or have a prior claim on, each with ``namespace/name``.

    A client ID in another client's ``status.clientID`` is held by it (unless this client holds the same
    ID and is older: the older holder wins a race). A ``spec.clientID`` pinned by an older client is
    claimed by it, unless this client already holds that ID. Clients being deleted claim nothing.
    """
    meta = _mapping(client.get("metadata"))
    held = _string(_mapping(client.get("status")).get("clientID"))
    mine = _age_key(client)
    result: dict[str, str] = {}
    for other in others:
        other_meta = _mapping(other.get("metadata"))
        if other_meta.get("deletionTimestamp"):
            continue
        if (meta.get("uid") and other_meta.get("uid") == meta.get("uid")) or (
            other_meta.get("namespace") == meta.get("namespace")
            and other_meta.get("name") == meta.get("name")
        ):
            continue
        ref = f"{other_meta.get('namespace')}/{other_meta.get('name')}"
        older = _age_key(other) < mine
        other_held = _string(_mapping(other.get("status")).get("clientID"))
        if other_held is not None and (other_held != held or older):
            result.setdefault(other_held, ref)
        pinned = _string(_mapping(other.get("spec")).get("clientID"))
        if pinned is not None and pinned != held and older:
            result.setdefault(pinned, ref)
    return result


# --- Validation of what the CRD could not catch --------------------------------------------------------


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
    meta = _mapping(client.get("metadata"))
    spec = client.get("spec")
    if not _string(meta.get("uid")):
        problems.append("metadata.uid is missing, so the Secret cannot be owned by the OIDCClient")
    name = str(meta.get("name") or "")
    if len(name) > 63 or not _LABEL_VALUE.match(name):
        problems.append(
            f"metadata.name {name!r} cannot be the value of the {CLIENT_LABEL} label (at most 63 characters)"
        )
    rotate_value = _mapping(meta.get("annotations")).get(ROTATE_ANNOTATION)
    if isinstance(rotate_value, str) and len(rotate_value) > _MAX_ROTATION_VALUE:
        problems.append(f"the annotation {ROTATE_ANNOTATION} is longer than {_MAX_ROTATION_VALUE} characters")
    if spec is not None and not isinstance(spec, Mapping):
        return [*problems, "spec must be an object"]
    spec = _mapping(spec)
    if "secretName" in spec:
        value = spec["secretName"]
        if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            problems.append(f"spec.secretName {value!r} is not a valid Secret name")
    if "clientID" in spec:
        value = spec["clientID"]
        if not isinstance(value, str) or not _CLIENT_ID.match(value):
            problems.append(f"spec.clientID {value!r} must be 8 to 128 letters, digits or . _ ~ -")
    if "public" in spec and not isinstance(spec["public"], bool):
        problems.append("spec.public must be true or false")
    rotation = spec.get("secretRotation")
    grace = _mapping(rotation).get("gracePeriod", "0s")
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
    return problems


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
    for field_name in _TEMPLATE_KEYS:
        if field_name not in keys:
            continue
        value = keys[field_name]
        if not _is_data_key(value):
            problems.append(f"spec.secretTemplate.keys.{field_name} {value!r} is not a valid Secret key")
        elif value in _TEMPLATE_KEYS.values() or value in chosen:
            problems.append(
                f"spec.secretTemplate.keys.{field_name} {value!r} names a key that is already written"
            )
        else:
            chosen.append(value)
    return problems


# --- The decision ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Client:
    """The parts of the OIDCClient the decision reads, parsed once."""

    name: str
    namespace: str
    uid: str | None
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    rotate_value: str | None

    @classmethod
    def parse(cls, client: Mapping[str, Any]) -> _Client:
        meta = _mapping(client.get("metadata"))
        generation = meta.get("generation")
        return cls(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            uid=_string(meta.get("uid")),
            generation=generation
            if isinstance(generation, int) and not isinstance(generation, bool)
            else None,
            spec=_mapping(client.get("spec")),
            status=_mapping(client.get("status")),
            rotate_value=_string(_mapping(meta.get("annotations")).get(ROTATE_ANNOTATION)),
        )


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

    ``current`` is the Secret named by :func:`secret_name` (None if absent); ``previous`` the Secret
    named by ``status.secretName`` when that differs (None if absent or unchanged); ``claimed`` maps the
    client IDs other OIDCClients hold or claim to their ``namespace/name`` (see
    :func:`claimed_client_ids`); ``issuer`` is written into the Secret; ``now`` is the current time
    (timezone-aware); ``credentials`` makes new client IDs and secrets.
    """
    if _mapping(client.get("metadata")).get("deletionTimestamp"):
        return Plan()  # Being deleted: the garbage collector removes the Secret with its owner.
    obj = _Client.parse(client)
    problems = validate(client)
    if problems:
        return _blocked(obj, INVALID_SPEC, f"The spec cannot be applied: {'; '.join(problems)}.", now)
    pinned = _string(obj.spec.get("clientID"))
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
    return _Decision(obj, client, name, current, previous, issuer, now, credentials).plan()


def _blocked(obj: _Client, reason: str, message: str, now: datetime.datetime) -> Plan:
    """Nothing is written but status: Ready=False with this reason; a Warning when the reason is new."""
    old_ready = _mapping(find_condition(obj.status.get("conditions"), READY_CONDITION))
    conditions = set_conditions(
        obj.status.get("conditions"),
        [Condition(READY_CONDITION, "False", reason, message)],
        generation=obj.generation,
        now=now,
    )
    desired: dict[str, Any] = {"conditions": conditions}
    if obj.generation is not None:
        desired["observedGeneration"] = obj.generation
    is_new = old_ready.get("status") != "False" or old_ready.get("reason") != reason
    events = (Event("Warning", reason, message),) if is_new else ()
    return Plan(status=_status_patch(obj.status, desired), events=events)


class _Decision:
    """One run of :func:`plan` once the client may write its Secret; split into steps for reading."""

    def __init__(
        self,
        obj: _Client,
        client: Mapping[str, Any],
        name: str,
        current: Mapping[str, Any] | None,
        previous: Mapping[str, Any] | None,
        issuer: str,
        now: datetime.datetime,
        credentials: CredentialGenerator,
    ) -> None:
        self.obj, self.client, self.name, self.issuer, self.now = obj, client, name, issuer, now
        self.current = current
        # The old Secret counts only if it is a different one and ours: never read or delete another's.
        prev_name = _string(_mapping(_mapping(previous).get("metadata")).get("name"))
        self.previous = (
            previous if previous is not None and prev_name != name and is_owned(previous, obj.uid) else None
        )
        self.source = current if current is not None else self.previous
        self.data = decode_data(self.source)
        self.source_annotations = _mapping(_mapping(_mapping(self.source).get("metadata")).get("annotations"))
        self.credentials = credentials
        self.public = obj.spec.get("public") is True
        self.grace = parse_duration(str(_mapping(obj.spec.get("secretRotation")).get("gracePeriod", "0s")))

    def plan(self) -> Plan:
        client_id, id_origin = self._client_id()
        client_secret, change = self._client_secret()
        rotation_record = self._rotation_record()
        annotations = self._annotations(client_secret, change, rotation_record)
        desired = self._secret(client_id, client_secret, annotations)
        action: Action = "create"
        patch: dict[str, Any] | None = None
        if self.current is not None:
            patch = secret_patch(self.current, desired)
            action = "patch" if patch else "none"
        delete = _string(_mapping(_mapping(self.previous).get("metadata")).get("name"))
        status = self._status(client_id, change, rotation_record)
        events = self._events(client_id, id_origin, change, action, patch, delete)
        return Plan(
            action=action,
            secret=desired,
            secret_patch=patch,
            delete_secret=delete,
            status=_status_patch(self.obj.status, status),
            events=tuple(events),
        )

    # Credentials.

    def _client_id(self) -> tuple[str, str]:
        """The client ID and where it came from: spec, status, secret or generated."""
        pinned = _string(self.obj.spec.get("clientID"))
        if pinned is not None:
            return pinned, "spec"
        held = _string(self.obj.status.get("clientID"))
        if held is not None:
            return held, "status"
        found = self.data.get(CLIENT_ID_KEY)
        if found is not None and _CLIENT_ID.match(found):
            return found, "secret"
        return self.credentials.client_id(), "generated"

    @property
    def _brand_new(self) -> bool:
        # Never reconciled (or both its status and its Secret are gone: then nothing can be recovered).
        return self.source is None and _string(self.obj.status.get("clientID")) is None

    @property
    def _honoured(self) -> set[str]:
        rotation = _mapping(self.obj.status.get("rotation"))
        values = {
            _string(rotation.get("lastValue")),
            _string(self.source_annotations.get(ROTATED_FOR_ANNOTATION)),
        }
        return {value for value in values if value is not None}

    @property
    def _rotation_requested(self) -> bool:
        return self.obj.rotate_value is not None and self.obj.rotate_value not in self._honoured

    def _client_secret(self) -> tuple[str | None, CredentialsChange]:
        if self._brand_new:
            return (None if self.public else self.credentials.client_secret()), "generated"
        if self.public:
            return None, "kept"
        found = self.data.get(CLIENT_SECRET_KEY)
        if found is None or not _CLIENT_SECRET.match(found):
            return self.credentials.client_secret(), ("deleted" if self.source is None else "invalid")
        if self._rotation_requested:
            return self.credentials.client_secret(), "rotated"
        return found, "kept"

    # Rotation bookkeeping.

    def _rotation_record(self) -> dict[str, str] | None:
        """The desired ``status.rotation``: the value honoured last, and when, if known."""
        value = self.obj.rotate_value
        old = _mapping(self.obj.status.get("rotation"))
        if value is None:
            # The annotation was removed: the record of what was honoured stays (in status and Secret).
            kept = {k: v for k, v in old.items() if isinstance(v, str)}
            on_secret = _string(self.source_annotations.get(ROTATED_FOR_ANNOTATION))
            if "lastValue" not in kept and on_secret is not None:
                kept["lastValue"] = on_secret
            return kept or None
        if self._rotation_requested:
            # Honoured now: by a rotation, or by the new secret the client got anyway.
            return {"lastValue": value, "lastTime": format_time(self.now)}
        if old.get("lastValue") == value:
            return {k: v for k, v in old.items() if isinstance(v, str)}
        return {"lastValue": value}  # Status was lost; the Secret says the value was honoured, not when.

    def _annotations(
        self, client_secret: str | None, change: CredentialsChange, rotation_record: dict[str, str] | None
    ) -> dict[str, str]:
        template = _mapping(_mapping(self.obj.spec.get("secretTemplate")).get("annotations"))
        annotations = {str(k): str(v) for k, v in template.items()}
        if rotation_record is not None and "lastValue" in rotation_record:
            annotations[ROTATED_FOR_ANNOTATION] = rotation_record["lastValue"]
        if client_secret is None:
            return annotations
        if change == "rotated" and self.grace > datetime.timedelta(0):
            old_secret = self.data[CLIENT_SECRET_KEY]
            annotations[PREVIOUS_SECRET_HASH_ANNOTATION] = secret_hash(old_secret)
            annotations[PREVIOUS_SECRET_EXPIRES_ANNOTATION] = format_time(self.now + self.grace)
        elif change == "kept":
            # A grace period still running is kept as it is; an expired one is dropped.
            old_hash = _string(self.source_annotations.get(PREVIOUS_SECRET_HASH_ANNOTATION))
            old_expiry = _string(self.source_annotations.get(PREVIOUS_SECRET_EXPIRES_ANNOTATION))
            expires = parse_time(old_expiry)
            if old_hash is not None and old_expiry is not None and expires is not None and expires > self.now:
                annotations[PREVIOUS_SECRET_HASH_ANNOTATION] = old_hash
                annotations[PREVIOUS_SECRET_EXPIRES_ANNOTATION] = old_expiry
        return annotations

    # The Secret.

    def _secret(
        self, client_id: str, client_secret: str | None, annotations: dict[str, str]
    ) -> dict[str, Any]:
        template = _mapping(self.obj.spec.get("secretTemplate"))
        values = {CLIENT_ID_KEY: client_id, ISSUER_KEY: self.issuer}
        if client_secret is not None:
            values[CLIENT_SECRET_KEY] = client_secret
        data = dict(values)
        for field_name, standard in _TEMPLATE_KEYS.items():
            extra = _string(_mapping(template.get("keys")).get(field_name))
            if extra is not None and standard in values:
                data[extra] = values[standard]
        labels = {str(k): str(v) for k, v in _mapping(template.get("labels")).items()}
        labels.update({MANAGED_BY_LABEL: MANAGER, CLIENT_LABEL: self.obj.name})
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.obj.namespace, "labels": labels}
        if annotations:
            metadata["annotations"] = annotations
        metadata["ownerReferences"] = [owner_reference(self.client)]
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "Opaque",
            "data": {key: _encode(value) for key, value in sorted(data.items())},
        }

    # Status and Events.

    def _status(
        self, client_id: str, change: CredentialsChange, rotation_record: dict[str, str] | None
    ) -> dict[str, Any]:
        ready = Condition(
            READY_CONDITION,
            "True",
            RECONCILED,
            f"Secret {self.name!r} holds the credentials of client ID {client_id!r}"
            + (" (a public client has no secret)." if self.public else "."),
        )
        desired: dict[str, Any] = {"clientID": client_id, "secretName": self.name}
        if self.obj.generation is not None:
            desired["observedGeneration"] = self.obj.generation
        if rotation_record is not None:
            desired["rotation"] = rotation_record
        desired["conditions"] = set_conditions(
            self.obj.status.get("conditions"),
            [ready, self._credentials_condition(change)],
            generation=self.obj.generation,
            now=self.now,
        )
        return desired

    def _credentials_condition(self, change: CredentialsChange) -> Condition:
        at = format_time(self.now)
        if change == "deleted":
            return Condition(
                CREDENTIALS_CONDITION,
                "True",
                SECRET_DELETED,
                "No Secret owned by this OIDCClient held its client secret any more (it was deleted), "
                f"so a new client secret was written to Secret {self.name!r} at {at}; the client ID is "
                "unchanged. Applications must use the new secret.",
            )
        if change == "invalid":
            return Condition(
                CREDENTIALS_CONDITION,
                "True",
                SECRET_VALUE_INVALID,
                f"Secret {self.name!r} had no valid {CLIENT_SECRET_KEY}; a new client secret was written "
                f"at {at} (the client ID is unchanged). Applications must use the new secret.",
            )
        if change == "rotated":
            return Condition(
                CREDENTIALS_CONDITION,
                "False",
                ROTATED,
                f"The client secret was rotated at {at} for {ROTATE_ANNOTATION}={self.obj.rotate_value!r}.",
            )
        if change == "generated":
            return Condition(
                CREDENTIALS_CONDITION, "False", GENERATED, f"The credentials were generated at {at}."
            )
        old = find_condition(self.obj.status.get("conditions"), CREDENTIALS_CONDITION)
        if old is not None and old.get("status") in ("True", "False") and _string(old.get("reason")):
            return Condition(CREDENTIALS_CONDITION, old["status"], old["reason"], str(old.get("message", "")))
        return Condition(
            CREDENTIALS_CONDITION,
            "False",
            RECOVERED,
            f"The credentials were read back from Secret {self.name!r} at {at}.",
        )

    def _events(
        self,
        client_id: str,
        id_origin: str,
        change: CredentialsChange,
        action: Action,
        patch: Mapping[str, Any] | None,
        delete: str | None,
    ) -> list[Event]:
        events: list[Event] = []
        if delete is not None:
            message = f"Moved the credentials from Secret {delete!r} to {self.name!r} and deleted {delete!r}."
            events.append(Event("Normal", "SecretMoved", message))
        elif change == "generated":
            events.append(
                Event("Normal", "SecretCreated", f"Created Secret {self.name!r} for client ID {client_id!r}.")
            )
        elif self.current is None and change != "deleted":
            events.append(
                Event(
                    "Normal",
                    "SecretRestored",
                    f"Recreated the deleted Secret {self.name!r} (client ID unchanged).",
                )
            )
        if id_origin == "secret":
            events.append(
                Event(
                    "Normal",
                    "CredentialsRecovered",
                    f"Read the client ID {client_id!r} back from Secret {self.name!r}.",
                )
            )
        if change in ("deleted", "invalid"):
            message = self._credentials_condition(change).message
            events.append(Event("Warning", "CredentialsRegenerated", message))
        elif change == "rotated":
            if self.grace > datetime.timedelta(0):
                until = f"stays valid until {format_time(self.now + self.grace)}"
            else:
                until = "is refused from now on"
            events.append(
                Event(
                    "Normal",
                    "SecretRotated",
                    f"Rotated the client secret in Secret {self.name!r} for "
                    f"{ROTATE_ANNOTATION}={self.obj.rotate_value!r}; the previous secret {until}.",
                )
            )
        if self.public and self._rotation_requested and change != "generated":
            events.append(
                Event(
                    "Normal",
                    "RotationSkipped",
                    f"A public client has no secret to rotate; recorded {self.obj.rotate_value!r}.",
                )
            )
        changed = _describe(patch or {})
        if action == "patch" and change == "kept" and changed:
            events.append(
                Event("Normal", "SecretUpdated", f"Updated Secret {self.name!r}: changed {changed}.")
            )
        return events


# --- Patches ------------------------------------------------------------------------------------------


def secret_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7396) that turns ``current`` into ``desired``; empty if they match.

    Labels, annotations and data keys not desired are removed (``null``); ownerReferences are replaced
    as a whole. Data is compared decoded, so an equivalent base64 spelling is no change. The patch
    carries the current ``resourceVersion``, so a concurrent change makes it fail with 409 instead
    of being overwritten.
    """
    cur_meta, want_meta = _mapping(current.get("metadata")), _mapping(desired.get("metadata"))
    meta_patch: dict[str, Any] = {}
    for part in ("labels", "annotations"):
        diff = _map_diff(_mapping(cur_meta.get(part)), _mapping(want_meta.get(part)))
        if diff:
            meta_patch[part] = diff
    if list(_owner_references(current)) != list(_owner_references(desired)):
        meta_patch["ownerReferences"] = want_meta.get("ownerReferences", [])
    cur_data, want_data = decode_data(current), decode_data(desired)
    raw_current = _mapping(current.get("data"))
    data_patch: dict[str, Any] = {
        key: _mapping(desired.get("data"))[key]
        for key, value in want_data.items()
        if cur_data.get(key) != value
    }
    data_patch.update({key: None for key in raw_current if key not in want_data})
    patch: dict[str, Any] = {}
    if meta_patch:
        patch["metadata"] = meta_patch
    if data_patch:
        patch["data"] = data_patch
    version = _string(cur_meta.get("resourceVersion"))
    if patch and version is not None:
        patch.setdefault("metadata", {})["resourceVersion"] = version
    return patch


def _map_diff(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {key: value for key, value in desired.items() if current.get(key) != value}
    diff.update({key: None for key in current if key not in desired})
    return diff


def _describe(patch: Mapping[str, Any]) -> str:
    """What a Secret patch changes, for people (``labels; data client_id``); empty for bookkeeping only."""
    parts: list[str] = []
    meta = _mapping(patch.get("metadata"))
    parts.extend(part for part in ("labels", "ownerReferences") if part in meta)
    if set(_mapping(meta.get("annotations"))) - {ROTATED_FOR_ANNOTATION}:
        parts.append("annotations")
    if "data" in patch:
        parts.append("data " + ", ".join(sorted(_mapping(patch.get("data")))))
    return "; ".join(parts)


def _status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
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
