"""The client's credentials: generated once, read back, regenerated when lost, rotated on request.

- The client ID is ``spec.clientID`` if pinned, else the one held in ``status.clientID`` (it wins over a
  hand-edited Secret), else a well-formed one found in the Secret, else a new random one.
- The client secret lives only in the Secret: a well-formed value found there is always kept; a
  missing or malformed one is replaced (``deleted`` / ``invalid``).
- Rotation: the annotation ``kubeoidc.io/rotate-secret`` rotates the secret once per new value. The
  values already honoured are ``status.rotation.lastValue`` and the Secret's ``kubeoidc.io/rotated-for``
  annotation (written in the same request as the new secret, so a failed status write or a lost
  status never rotates twice). A value present when the credentials are first generated is recorded
  without rotating: the secret is brand new anyway.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final, Literal, Protocol

from kubeoidc_contract import CLIENT_ID_KEY, CLIENT_SECRET_KEY, GROUP

from .conditions import format_time
from .objects import Inputs, mapping, string
from .validation import CLIENT_ID

#: On the Secret: the rotation value its client secret honours (operator-internal bookkeeping).
ROTATED_FOR_ANNOTATION: Final = f"{GROUP}/rotated-for"
# token_urlsafe(32) gives 43 characters; anything at least as long in that alphabet has 256 bits or more.
_CLIENT_SECRET = re.compile(r"^[A-Za-z0-9_-]{43,512}$")

#: What happened to the client secret in this reconcile.
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


def secret_hash(client_secret: str) -> str:
    """The SHA-256 (hex) the Secret keeps of a previous client secret during a grace period."""
    return hashlib.sha256(client_secret.encode("utf-8")).hexdigest()


def client_id(inputs: Inputs, credentials: CredentialGenerator) -> tuple[str, str]:
    """The client ID and where it came from: ``spec``, ``status``, ``secret`` or ``generated``."""
    pinned = string(inputs.obj.spec.get("clientID"))
    if pinned is not None:
        return pinned, "spec"
    held = string(inputs.obj.status.get("clientID"))
    if held is not None:
        return held, "status"
    found = inputs.data.get(CLIENT_ID_KEY)
    if found is not None and CLIENT_ID.match(found):
        return found, "secret"
    return credentials.client_id(), "generated"


def brand_new(inputs: Inputs) -> bool:
    """Never reconciled (or both its status and its Secret are gone: then nothing can be recovered)."""
    return inputs.source is None and string(inputs.obj.status.get("clientID")) is None


def _honoured(inputs: Inputs) -> set[str]:
    rotation = mapping(inputs.obj.status.get("rotation"))
    values = {
        string(rotation.get("lastValue")),
        string(inputs.source_annotations.get(ROTATED_FOR_ANNOTATION)),
    }
    return {value for value in values if value is not None}


def rotation_requested(inputs: Inputs) -> bool:
    """Whether the rotation annotation holds a value not honoured yet."""
    return inputs.obj.rotate_value is not None and inputs.obj.rotate_value not in _honoured(inputs)


def client_secret(inputs: Inputs, credentials: CredentialGenerator) -> tuple[str | None, CredentialsChange]:
    """The client secret to write (None for a client without one) and what happened to it."""
    if brand_new(inputs):
        return (None if inputs.secretless else credentials.client_secret()), "generated"
    if inputs.secretless:
        return None, "kept"
    found = inputs.data.get(CLIENT_SECRET_KEY)
    if found is None or not _CLIENT_SECRET.match(found):
        return credentials.client_secret(), ("deleted" if inputs.source is None else "invalid")
    if rotation_requested(inputs):
        return credentials.client_secret(), "rotated"
    return found, "kept"


def rotation_record(inputs: Inputs) -> dict[str, str] | None:
    """The desired ``status.rotation``: the value honoured last, and when, if known."""
    value = inputs.obj.rotate_value
    old = mapping(inputs.obj.status.get("rotation"))
    if value is None:
        # The annotation was removed: the record of what was honoured stays (in status and Secret).
        kept = {k: v for k, v in old.items() if isinstance(v, str)}
        on_secret = string(inputs.source_annotations.get(ROTATED_FOR_ANNOTATION))
        if "lastValue" not in kept and on_secret is not None:
            kept["lastValue"] = on_secret
        return kept or None
    if rotation_requested(inputs):
        # Honoured now: by a rotation, or by the new secret the client got anyway.
        return {"lastValue": value, "lastTime": format_time(inputs.now)}
    if old.get("lastValue") == value:
        return {k: v for k, v in old.items() if isinstance(v, str)}
    return {"lastValue": value}  # Status was lost; the Secret says the value was honoured, not when.
