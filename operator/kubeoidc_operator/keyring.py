"""The provider's signing keys over time: pure decisions, no I/O (the key keeper applies them).

A key lives through four stages, recorded in the Secret's ``schedule.json`` (the provider reads only
``jwks.json``):

1. **published**: in the JWKS but not signing, for ``publish_ahead``, so that every relying party has
   fetched it (JWKS caches) before the first token it signs arrives;
2. **signing**: named by ``signing_kid``, for ``rotation_period``;
3. **retired**: still published for ``retire_after`` (at least the longest token lifetime), so tokens it
   signed keep validating;
4. **removed**.

So a rotation never breaks a token in flight: the next key is published ``publish_ahead`` before the
current one's period ends, and promoted only once it has been published that long.

Each algorithm has a lane of its own, with the same schedule: the policy's ``alg`` (the default, named
by ``signing_kid``) and each of ``also`` (named in ``signing_kids``), so a client may ask for any of
them and each rotates on its own.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from kubeoidc_contract import MANAGED_BY_LABEL, MANAGER, SIGNING_KEYS_KEY, SIGNING_KEYS_LABEL
from kubeoidc_contract.jwks import SIGNING_KID, SIGNING_KIDS

SCHEDULE_KEY: Final = "schedule.json"

Action = Literal["none", "create", "patch", "refuse"]
#: Makes a new private JWK for an algorithm (``kubeoidc_contract.jwks.generate_key``; tests give their own).
KeyMaker = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class KeyPolicy:
    """How keys rotate. ``retire_after`` must outlast every token a key signs (ID tokens: an hour)."""

    alg: str = "RS256"
    #: Further algorithms, each with a signing key of its own on the same schedule.
    also: tuple[str, ...] = ()
    rotation_period: datetime.timedelta = datetime.timedelta(days=30)
    publish_ahead: datetime.timedelta = datetime.timedelta(days=1)
    retire_after: datetime.timedelta = datetime.timedelta(days=1)


@dataclass(frozen=True)
class KeyringPlan:
    """What to write: the whole desired Secret (``create``/``patch``), nothing, or a refusal to touch it."""

    action: Action
    secret: dict[str, Any] | None = None
    changes: tuple[str, ...] = ()
    problem: str | None = None


@dataclass
class _Stage:
    created: str
    activated: str | None = None
    retired: str | None = None


@dataclass
class _Ring:
    keys: list[dict[str, Any]] = field(default_factory=list)
    signing_kid: str | None = None
    #: The signing key of each further algorithm (the policy's ``also``).
    signing_kids: dict[str, str] = field(default_factory=dict)
    schedule: dict[str, _Stage] = field(default_factory=dict)


def plan_keyring(
    current: Mapping[str, Any] | None,
    *,
    namespace: str,
    name: str,
    policy: KeyPolicy,
    now: datetime.datetime,
    make_key: KeyMaker,
) -> KeyringPlan:
    """Decide the signing-keys Secret at ``now``, from the one there is (None if absent)."""
    if current is not None and not _is_ours(current):
        return KeyringPlan(
            "refuse",
            problem=(
                f"Secret {namespace}/{name} exists but is not a kubeoidc signing-keys Secret (it lacks the "
                f"label {SIGNING_KEYS_LABEL}); it is left untouched. Delete it or choose another name."
            ),
        )
    try:
        ring = _read(current) if current is not None else _Ring()
    except ValueError as error:
        return KeyringPlan(
            "refuse", problem=f"Secret {namespace}/{name} cannot be read: {error}; left untouched."
        )
    before = _document(ring)
    changes = _advance(ring, policy, now, make_key)
    secret = _secret(namespace, name, ring)
    if current is not None and _document(ring) == before and _labels_ok(current):
        return KeyringPlan("none")
    return KeyringPlan("create" if current is None else "patch", secret, tuple(changes))


def _advance(ring: _Ring, policy: KeyPolicy, now: datetime.datetime, make_key: KeyMaker) -> list[str]:
    changes: list[str] = []
    stamp = _format(now)
    signing = {ring.signing_kid, *ring.signing_kids.values()}
    for key in ring.keys:  # Keys added by hand: published from now on.
        kid = key["kid"]
        if kid not in ring.schedule:
            ring.schedule[kid] = _Stage(created=stamp, activated=stamp if kid in signing else None)
    # The default lane takes every key of no other lane (keys added by hand may not say their alg).
    others = [alg for alg in dict.fromkeys(policy.also) if alg != policy.alg]
    lane_of = {
        key["kid"]: (alg if alg in others else policy.alg) for key in ring.keys for alg in [_alg_of(key)]
    }
    ring.signing_kid = _advance_lane(
        ring, policy.alg, ring.signing_kid, lane_of, policy, now, make_key, changes
    )
    for alg in others:
        kid = _advance_lane(ring, alg, ring.signing_kids.get(alg), lane_of, policy, now, make_key, changes)
        ring.signing_kids[alg] = kid
    for kid, stage in list(ring.schedule.items()):
        if stage.retired is not None and now >= _parse(stage.retired) + policy.retire_after:
            ring.keys = [key for key in ring.keys if key["kid"] != kid]
            del ring.schedule[kid]
            changes.append(f"removed retired key {kid}")
    return changes


def _advance_lane(
    ring: _Ring,
    alg: str,
    signing_kid: str | None,
    lane_of: dict[str, str],
    policy: KeyPolicy,
    now: datetime.datetime,
    make_key: KeyMaker,
    changes: list[str],
) -> str:
    """One algorithm's schedule: make, publish and promote its keys; the kid that signs for it now."""
    stamp = _format(now)
    if signing_kid is None or signing_kid not in ring.schedule:
        key = make_key(alg)
        ring.keys.append(key)
        lane_of[key["kid"]] = alg
        signing_kid = key["kid"]
        ring.schedule[signing_kid] = _Stage(created=stamp, activated=stamp)
        changes.append(
            f"created {alg} signing key {signing_kid}"
            if policy.also
            else f"created signing key {signing_kid}"
        )
    active = ring.schedule[signing_kid]
    due = _parse(active.activated or active.created) + policy.rotation_period
    pending = [
        kid
        for kid, stage in ring.schedule.items()
        if stage.activated is None and stage.retired is None and lane_of.get(kid) == alg
    ]
    if not pending and now >= due - policy.publish_ahead:
        key = make_key(alg)
        ring.keys.append(key)
        lane_of[key["kid"]] = alg
        ring.schedule[key["kid"]] = _Stage(created=stamp)
        pending = [key["kid"]]
        changes.append(f"published next key {key['kid']}")
    ready = [kid for kid in pending if now >= _parse(ring.schedule[kid].created) + policy.publish_ahead]
    if ready and now >= due:
        retiring, promoted = signing_kid, ready[0]
        ring.schedule[retiring].retired = stamp
        ring.schedule[promoted].activated = stamp
        signing_kid = promoted
        changes.append(f"promoted {promoted} to signing, retired {retiring}")
    return signing_kid


#: The algorithm each key type signs with (a key's ``alg`` member, when present, says it first).
_ALGS_BY_TYPE: Final[dict[tuple[object, object], str]] = {
    ("RSA", None): "RS256",
    ("EC", "P-256"): "ES256",
    ("OKP", "Ed25519"): "EdDSA",
}


def _alg_of(key: Mapping[str, Any]) -> str | None:
    alg = key.get("alg")
    return alg if isinstance(alg, str) else _ALGS_BY_TYPE.get((key.get("kty"), key.get("crv")))


def _read(secret: Mapping[str, Any]) -> _Ring:
    data = secret.get("data") or {}
    document = _decode(data, SIGNING_KEYS_KEY)
    schedule = _decode(data, SCHEDULE_KEY) if SCHEDULE_KEY in data else {}
    keys = document.get("keys")
    if not isinstance(keys, list) or not all(
        isinstance(k, dict) and isinstance(k.get("kid"), str) for k in keys
    ):
        raise ValueError(f"{SIGNING_KEYS_KEY} has no list of keys with a kid each")
    kids = {key["kid"] for key in keys}
    signing = document.get(SIGNING_KID) or (keys[0]["kid"] if keys else None)
    lanes = document.get(SIGNING_KIDS) or {}
    if not isinstance(lanes, dict):
        raise ValueError(f"{SIGNING_KIDS} is not a JSON object")
    stages = {
        kid: _Stage(**{k: v for k, v in stage.items() if k in ("created", "activated", "retired")})
        for kid, stage in schedule.items()
        if kid in kids and isinstance(stage, dict) and isinstance(stage.get("created"), str)
    }
    others = {alg: kid for alg, kid in lanes.items() if kid in kids and kid != signing}
    return _Ring(
        keys=keys, signing_kid=signing if signing in kids else None, signing_kids=others, schedule=stages
    )


def _decode(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.b64decode(str(data.get(key, "")), validate=True))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{key} is not base64-encoded JSON") from error
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not a JSON object")
    return value


def _document(ring: _Ring) -> tuple[str, str]:
    jwks: dict[str, Any] = {"keys": ring.keys, SIGNING_KID: ring.signing_kid}
    if ring.signing_kids:
        jwks[SIGNING_KIDS] = ring.signing_kids
    schedule = {
        kid: {k: v for k, v in vars(stage).items() if v is not None} for kid, stage in ring.schedule.items()
    }
    return json.dumps(jwks, sort_keys=True), json.dumps(schedule, sort_keys=True)


def _secret(namespace: str, name: str, ring: _Ring) -> dict[str, Any]:
    jwks, schedule = _document(ring)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": _LABELS},
        "data": {SIGNING_KEYS_KEY: _encode(jwks), SCHEDULE_KEY: _encode(schedule)},
    }


_LABELS: Final = {MANAGED_BY_LABEL: MANAGER, SIGNING_KEYS_LABEL: "true"}


def _is_ours(secret: Mapping[str, Any]) -> bool:
    labels = (secret.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(SIGNING_KEYS_LABEL) == "true")


def _labels_ok(secret: Mapping[str, Any]) -> bool:
    labels = (secret.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in _LABELS.items())


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _format(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
