"""Compact JWS signing (RFC 7515 §7.1) straight on ``cryptography``, for the keys the provider signs with.

Every token the provider issues is signed here, so the signing is what a token costs beyond its claims:
the protected header of each key and ``typ`` is encoded once, and the signature is ``cryptography``'s
call and nothing around it (a generic JOSE library parses and re-encodes the header on every token).
Verification stays with joserfc (``keys.KeySet.verify``), which checks every token signed here.

RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), ES256 ECDSA P-256 with SHA-256 whose signature
is ``r || s``, 32 bytes each (RFC 7518 §3.4, not DER), EdDSA Ed25519 (RFC 8037 §3.1).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = ["CompactSigner", "b64url"]

_P256_BYTES = 32


def b64url(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _signature_function(alg: str, key: object) -> Callable[[bytes], bytes]:
    if alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda data: key.sign(data, pkcs1, sha256)
    if alg == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        ecdsa = ec.ECDSA(hashes.SHA256())

        def es256(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, ecdsa))
            return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")

        return es256
    if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign
    raise ValueError(f"a {type(key).__name__} cannot sign {alg}")


class CompactSigner:
    """Signs compact JWSs with one private key: header ``alg``, ``kid`` and the ``typ`` asked for."""

    __slots__ = ("_headers", "_signature", "alg", "kid")

    def __init__(self, alg: str, kid: str, private_key: object) -> None:
        self.alg = alg
        self.kid = kid
        self._signature = _signature_function(alg, private_key)
        #: ``typ`` -> the encoded protected header and its ``.``, made on first use (a handful of types).
        self._headers: dict[str, bytes] = {}

    def sign(self, payload: bytes, typ: str) -> str:
        """The compact serialisation of ``payload`` (the claims' JSON) signed under header ``typ``."""
        prefix = self._headers.get(typ)
        if prefix is None:
            header = json.dumps({"alg": self.alg, "kid": self.kid, "typ": typ}, separators=(",", ":"))
            prefix = self._headers[typ] = b64url(header.encode()) + b"."
        signing_input = prefix + b64url(payload)
        return (signing_input + b"." + b64url(self._signature(signing_input))).decode("ascii")
