"""The operator's settings: ``KUBEOIDC_OPERATOR_*`` environment variables (or the CLI's flags, which win),
validated at start.

Built once by the caller (the CLI, or a test) and passed in; nothing here is read at import time.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kubeoidc_contract import split_object_ref
from kubeoidc_contract.durations import parse_duration
from kubeoidc_contract.issuer import check_issuer
from kubeoidc_contract.jwks import DEFAULT_SIGNING_ALG, SIGNING_ALGS

ENV_PREFIX = "KUBEOIDC_OPERATOR_"

#: A Kubernetes object name (RFC 1123 subdomain): what a peering name must be.
_OBJECT_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _duration(value: Any) -> Any:
    """``30d``, ``720h``, ``90m``, ``3600s`` or a combination (``1h30m``); a number is seconds."""
    if isinstance(value, str):
        try:
            return parse_duration(value.strip(), units="dhms")
        except ValueError:
            pass  # pydantic's own timedelta parsing then says what is wrong
    return value


class SettingsError(ValueError):
    """The settings are missing or invalid; the message says which variable and why."""


class OperatorSettings(BaseSettings):
    """Configuration of the operator. Every field can be set by ``KUBEOIDC_OPERATOR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    #: The provider's issuer URL, written into every client Secret (key ``issuer``). Required.
    issuer: str
    #: The namespaces to watch, comma-separated in the environment; empty means every namespace.
    namespaces: Annotated[tuple[str, ...], NoDecode] = ()
    #: Seconds between two resyncs of every OIDCClient (repairs what no watch event reported).
    resync_interval: float = Field(default=300.0, gt=0)
    #: The port of kopf's liveness endpoint, ``http://0.0.0.0:<port>/healthz``.
    liveness_port: int = Field(default=8081, ge=1, le=65535)
    #: The name of the ``ClusterKopfPeering`` object shared by the operator's replicas: the replica with
    #: the highest priority is active, the others stand by until its keep-alive record expires (kopf's
    #: peering). Empty (the default): one standalone operator that talks to no peer.
    peering: str = ""
    #: This replica's peering priority. Empty (the default): a random negative number drawn at each
    #: start, so replicas of one Deployment differ (kopf pauses every replica of a tied priority) and
    #: kopf's maintenance tools, ``kopf freeze`` (priority 100) and ``kopf run --dev`` (666), outrank them.
    priority: int | None = None
    #: Seconds a replica's keep-alive record stays valid: when the active replica dies without a word,
    #: a standby takes over this long after its last keep-alive. kopf renews records 5 to 10 seconds
    #: ahead of expiry, every second for short lifetimes: 3 seconds leaves room for one late renewal.
    peering_lifetime: int = Field(default=60, ge=3)
    #: ``namespace/name`` of the Secret where the operator keeps the provider's signing keys, rotating
    #: them on the schedule below. Empty (the default): signing keys are managed by hand.
    signing_keys_secret: str = ""
    #: The algorithm of new signing keys: RS256 (every relying party supports it), ES256 or EdDSA.
    key_alg: str = DEFAULT_SIGNING_ALG
    #: How long a key signs before the next one takes over (``720h``, ``30d``).
    key_rotation_period: Annotated[datetime.timedelta, BeforeValidator(_duration)] = datetime.timedelta(
        days=30
    )
    #: How long a new key is published before it signs, so relying parties' JWKS caches have it.
    key_publish_ahead: Annotated[datetime.timedelta, BeforeValidator(_duration)] = datetime.timedelta(days=1)
    #: How long a retired key stays published: at least the longest token lifetime (ID tokens: 1h).
    key_retire_after: Annotated[datetime.timedelta, BeforeValidator(_duration)] = datetime.timedelta(days=1)
    #: Seconds between two looks at the signing keys' schedule.
    key_check_interval: float = Field(default=60.0, gt=0)
    #: The namespace of the IdentitySources to check and report on (the provider's; the chart sets the
    #: release namespace). Empty: none are checked.
    identity_namespace: str = ""
    #: Seconds between two checks of every IdentitySource (``status.lastChecked``).
    source_check_interval: float = Field(default=60.0, gt=0)

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_url(cls, value: str) -> str:
        # The same rule as the provider's: the issuer written into Secrets must be one it can serve.
        return check_issuer(value)

    @field_validator("key_alg")
    @classmethod
    def _known_alg(cls, value: str) -> str:
        if value not in SIGNING_ALGS:
            raise ValueError(f"must be one of {', '.join(SIGNING_ALGS)}, not {value!r}")
        return value

    @field_validator("peering")
    @classmethod
    def _peering_is_an_object_name(cls, value: str) -> str:
        if value and (len(value) > 253 or not _OBJECT_NAME.fullmatch(value)):
            raise ValueError(
                f"must be empty or the name of a ClusterKopfPeering object (lowercase letters, digits, "
                f"'-' and '.', such as kubeoidc), not {value!r}"
            )
        return value

    @field_validator("signing_keys_secret")
    @classmethod
    def _namespace_and_name(cls, value: str) -> str:
        if value and not all(_OBJECT_NAME.fullmatch(part) for part in _parts_or_none(value)):
            raise ValueError(
                f"must be empty or namespace/name, such as kubeoidc/kubeoidc-signing-keys, not {value!r}"
            )
        return value

    @property
    def signing_keys_ref(self) -> tuple[str, str] | None:
        """``signing_keys_secret`` as (namespace, name), or None when keys are managed by hand."""
        return split_object_ref(self.signing_keys_secret) if self.signing_keys_secret else None

    @model_validator(mode="after")
    def _keys_published_before_they_sign(self) -> OperatorSettings:
        if self.key_publish_ahead >= self.key_rotation_period:
            raise ValueError(
                f"{ENV_PREFIX}KEY_PUBLISH_AHEAD must be shorter than {ENV_PREFIX}KEY_ROTATION_PERIOD: a key "
                "is published that long before it signs, within the previous key's period"
            )
        return self

    @field_validator("priority", mode="before")
    @classmethod
    def _empty_priority_is_none(cls, value: Any) -> Any:
        # The chart sets every variable; an empty one means "draw a priority at start".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value


def _parts_or_none(ref: str) -> tuple[str, ...]:
    try:
        return split_object_ref(ref)
    except ValueError:
        return ("",)  # matches no object name


def load_settings(**overrides: Any) -> OperatorSettings:
    """Build the settings from the environment (and ``overrides``), or raise :class:`SettingsError`.

    The error message names the environment variables at fault, one line each.
    """
    try:
        return OperatorSettings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            variable = f"{ENV_PREFIX}{field.upper()}"
            if error["type"] == "missing" and field == "issuer":
                lines.append(
                    f"{variable} is required: the issuer URL of the kubeoidc provider, written into "
                    "every client Secret (for example https://login.example.com)"
                )
            elif not field:  # a rule across fields: its message names them
                lines.append(str(error["msg"]).removeprefix("Value error, "))
            else:
                lines.append(f"{variable}: {error['msg']}")
        raise SettingsError("invalid operator settings:\n  " + "\n  ".join(lines)) from None
