"""The signing keys in use, replaceable while the provider serves: how keys rotate without a restart.

The operator publishes a new key before it signs and keeps a retired one published while tokens it
signed live; the provider's watcher hands each new key set here. The key set and what is derived from
it (the discovery document) are swapped together, as one reference, so a request sees one or the other.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kubeoidc_contract as contract
from kubeoidc_provider.keys import KeySet, KeySetError
from kubeoidc_provider.metadata import discovery_bytes

logger = logging.getLogger(__name__)


class SigningKeys:
    """The current key set, and the discovery document that advertises its algorithms."""

    def __init__(
        self, issuer: str, keys: KeySet, on_replace: Callable[[tuple[str, ...]], None] | None = None
    ) -> None:
        self._issuer = issuer
        self._current = (keys, discovery_bytes(issuer, list(keys.signing_algs)))
        #: Told the algorithms of each new key set (the registry serves only clients it can sign for).
        self._on_replace = on_replace
        if on_replace is not None:
            on_replace(keys.signing_algs)

    @property
    def keys(self) -> KeySet:
        return self._current[0]

    @property
    def discovery(self) -> bytes:
        return self._current[1]

    def replace(self, keys: KeySet) -> None:
        """Start signing with ``keys`` (its signing key) and publishing all of its keys."""
        previous = self._current[0]
        if (
            keys.public_jwks_bytes == previous.public_jwks_bytes
            and keys.signing_kids == previous.signing_kids
        ):
            return
        self._current = (keys, discovery_bytes(self._issuer, list(keys.signing_algs)))
        if self._on_replace is not None and keys.signing_algs != previous.signing_algs:
            self._on_replace(keys.signing_algs)
        logger.info(
            "signing keys replaced: signing with %s, publishing %s", keys.signing_kid, ", ".join(keys.kids)
        )


def keys_from_secret(secret: Mapping[str, Any]) -> KeySet:
    """The key set in a signing-keys Secret (its ``jwks.json``); :class:`KeySetError` if it has none."""
    meta = secret.get("metadata") or {}
    where = f"Secret {meta.get('namespace')}/{meta.get('name')}"
    encoded = (secret.get("data") or {}).get(contract.SIGNING_KEYS_KEY)
    if not isinstance(encoded, str):
        raise KeySetError(f"{where} has no {contract.SIGNING_KEYS_KEY!r} key")
    try:
        document = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError) as error:
        raise KeySetError(f"{where}: {contract.SIGNING_KEYS_KEY!r} is not base64-encoded JSON") from error
    if not isinstance(document, Mapping):
        raise KeySetError(f"{where}: {contract.SIGNING_KEYS_KEY!r} is not a JWKS document")
    return KeySet.from_jwks(document)


class SecretFollower:
    """Replaces the signing keys each time the watched Secret changes; a bad version is refused."""

    def __init__(self, signing: SigningKeys) -> None:
        self.signing = signing

    def __call__(self, secret: Mapping[str, Any]) -> None:
        try:
            keys = keys_from_secret(secret)
        except KeySetError as error:
            logger.error("signing keys not replaced, the current ones stay in use: %s", error)
            return
        self.signing.replace(keys)
