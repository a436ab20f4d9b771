"""Reading OIDCClients and Secrets as the API serves them (plain dicts), for the decision modules.

Nothing is trusted to have the right shape: a field of the wrong type reads as absent. :class:`Inputs`
is what one decision reads, parsed once; the modules beside this one (ownership, validation, rotation,
secret, status) each take the part they need.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubeoidc_contract import PRIVATE_KEY_JWT_AUTH_METHOD, ROTATE_ANNOTATION
from kubeoidc_contract.crd import default_grace_period
from kubeoidc_contract.durations import parse_duration


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def string(value: object) -> str | None:
    """``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def metadata(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return mapping(mapping(obj).get("metadata"))


def decode_data(secret: Mapping[str, Any] | None) -> dict[str, str]:
    """The Secret's ``data``, decoded; values that are not base64 of UTF-8 text are left out."""
    result: dict[str, str] = {}
    for key, value in mapping(secret.get("data") if secret is not None else None).items():
        if not isinstance(value, str):
            continue
        try:
            result[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
    return result


def encode(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class ClientView:
    """The parts of the OIDCClient the decision reads, parsed once."""

    name: str
    namespace: str
    uid: str | None
    generation: int | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    rotate_value: str | None

    @classmethod
    def parse(cls, client: Mapping[str, Any]) -> ClientView:
        meta = metadata(client)
        generation = meta.get("generation")
        return cls(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            uid=string(meta.get("uid")),
            generation=generation
            if isinstance(generation, int) and not isinstance(generation, bool)
            else None,
            spec=mapping(client.get("spec")),
            status=mapping(client.get("status")),
            rotate_value=string(mapping(meta.get("annotations")).get(ROTATE_ANNOTATION)),
        )


@dataclass(frozen=True)
class Inputs:
    """Everything one decision reads, once the client may write its Secret (see ``reconcile.plan``).

    ``source`` is where existing credentials are read from: the current Secret, else the previous one
    (named by ``status.secretName``) when it is ours; ``data`` and ``source_annotations`` are its.
    """

    obj: ClientView
    client: Mapping[str, Any]
    name: str
    current: Mapping[str, Any] | None
    previous: Mapping[str, Any] | None
    issuer: str
    now: datetime.datetime

    @property
    def source(self) -> Mapping[str, Any] | None:
        return self.current if self.current is not None else self.previous

    @functools.cached_property
    def data(self) -> dict[str, str]:
        return decode_data(self.source)

    @property
    def source_annotations(self) -> Mapping[str, Any]:
        return mapping(metadata(self.source).get("annotations"))

    @property
    def public(self) -> bool:
        return self.obj.spec.get("public") is True

    @property
    def service_accounts(self) -> bool:
        """Whether ServiceAccount tokens authenticate the client (``spec.serviceAccounts``): no secret."""
        names = self.obj.spec.get("serviceAccounts")
        return isinstance(names, list) and len(names) > 0

    @property
    def own_keys(self) -> bool:
        """Whether the client signs its own assertions (``private_key_jwt``): no secret."""
        return self.obj.spec.get("tokenEndpointAuthMethod") == PRIVATE_KEY_JWT_AUTH_METHOD

    @property
    def secretless(self) -> bool:
        """A client with no secret: a public one, or one that ServiceAccount tokens or its own keys
        authenticate."""
        return self.public or self.service_accounts or self.own_keys

    @functools.cached_property
    def grace(self) -> datetime.timedelta:
        rotation = mapping(self.obj.spec.get("secretRotation"))
        return parse_duration(str(rotation.get("gracePeriod", default_grace_period())))
