"""A ``private_key_jwt`` client's public keys, as a :class:`~kubeoidc_provider.assertions.KeySource`.

The keys are the client's own (OIDC Core §9, RFC 7523 §2.2): inline in ``spec.jwks``, read here once per
distinct key set, or behind ``spec.jwksURI``, which :class:`~kubeoidc_provider.remote_jwks.RemoteKeySets`
fetches in the background. Either way only public, asymmetric signing keys are kept: a key set that
carries a private or a symmetric key is refused whole (the CRD refuses it first), as whoever published
it has given away what signs for the client.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from kubeoidc_provider.registration import Client

logger = logging.getLogger(__name__)

#: The key types a client's public keys may have; ``oct`` is a shared secret, never a public key.
PUBLIC_KEY_TYPES: Final = frozenset({"RSA", "EC", "OKP"})
#: JWK members only a private or a symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: The most keys one set may hold (a published set during a rotation holds two or three).
MAX_KEYS: Final = 16
#: Shorter RSA keys are refused (NIST SP 800-131A).
MIN_RSA_BITS: Final = 2048

#: A key set in memory: ``kid`` (None for a key without one) → the verification key.
Keys = Mapping[str | None, Key]


class KeySetError(ValueError):
    """The document is not a usable public key set; the message says why, and quotes no key."""


def public_keys(document: object) -> dict[str | None, Key]:
    """The signing keys of a public JWK Set (RFC 7517 §5); KeySetError if any key is not public."""
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list) or not keys:
        raise KeySetError("the key set has no keys list")
    if len(keys) > MAX_KEYS:
        raise KeySetError(f"the key set holds more than {MAX_KEYS} keys")
    found: dict[str | None, Key] = {}
    for index, jwk in enumerate(keys):
        if not isinstance(jwk, Mapping):
            raise KeySetError(f"key {index} is not an object")
        if jwk.get("kty") not in PUBLIC_KEY_TYPES or PRIVATE_MEMBERS & set(jwk):
            raise KeySetError(f"key {index} is not an RSA, EC or OKP public key")
        if jwk.get("use", "sig") != "sig":
            continue  # an encryption key of the same set never verifies a signature
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise KeySetError(f"key {index} has a kid that is not a string")
        if kid in found:
            raise KeySetError(f"two keys have the kid {kid!r}")
        try:
            key = JWKRegistry.import_key(dict(jwk))
        except (JoseError, ValueError, TypeError) as error:
            raise KeySetError(f"key {index} cannot be read: {type(error).__name__}") from error
        if key.is_private:
            raise KeySetError(f"key {index} is a private key")
        if jwk["kty"] == "RSA" and _rsa_bits(key) < MIN_RSA_BITS:
            raise KeySetError(f"key {index} is an RSA key shorter than {MIN_RSA_BITS} bits")
        found[kid] = key
    return found


def _rsa_bits(key: Key) -> int:
    raw: Any = key.raw_value
    return int(raw.key_size)


@functools.lru_cache(maxsize=1024)
def inline_keys(jwks_json: str) -> Keys:
    """The keys of an inline ``spec.jwks`` (as canonical JSON), read once per distinct set; an unusable
    set reads as no keys (and is logged once: the CRD and the operator refuse it before)."""
    try:
        return public_keys(json.loads(jwks_json))
    except (KeySetError, ValueError) as error:
        logger.warning("ignoring a client's inline jwks: %s", error)
        return {}


class RemoteKeys(Protocol):
    """The part of the background fetcher a request uses (``remote_jwks.RemoteKeySets``)."""

    def keys(self, uri: str) -> Keys:
        """The keys last fetched from ``uri`` (none yet: empty), from memory."""

    async def refresh(self, uri: str) -> bool:
        """Ask for an early fetch of ``uri``, bounded in time and rate-limited."""


class ClientKeySource:
    """The keys that sign one client's assertions; their issuer is the client itself (RFC 7523 §3)."""

    def __init__(self, client: Client, remote: RemoteKeys) -> None:
        self.client = client
        self._remote = remote

    @property
    def issuer(self) -> str:
        return self.client.client_id

    def _keys(self) -> Keys:
        if self.client.jwks is not None:
            return inline_keys(self.client.jwks)
        if self.client.jwks_uri is not None:
            return self._remote.keys(self.client.jwks_uri)
        return {}

    def key(self, kid: str | None) -> Key | None:
        keys = self._keys()
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        if kid not in keys and len(keys) == 1 and None in keys:
            return keys[None]  # one key without a kid verifies whatever kid the assertion names
        return keys.get(kid)

    async def refresh(self) -> bool:
        if self.client.jwks_uri is None or self.client.jwks is not None:
            return False  # inline keys change only with the OIDCClient, which the watcher feeds in
        return await self._remote.refresh(self.client.jwks_uri)
