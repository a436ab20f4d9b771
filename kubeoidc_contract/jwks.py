"""The signing-keys format: the private JWKS the operator writes and the provider reads, and making keys.

The document (the Secret key :data:`~kubeoidc_contract.SIGNING_KEYS_KEY`, or a file for keys managed by
hand) is a JSON Web Key Set (RFC 7517) with one member of our own::

    {"signing_kid": "k2", "keys": [{"kty": "RSA", "kid": "k2", ...}, {"kty": "EC", "kid": "k1", ...}]}

``signing_kid`` names the default signing key (else the first key); ``signing_kids`` the key that signs
for each other algorithm (else the first key of that algorithm); every key is published for
verification. joserfc is imported only when a key is made, so reading these names stays light.
"""

from __future__ import annotations

from typing import Any, Final

#: The JWKS member naming the key that signs.
SIGNING_KID: Final = "signing_kid"
#: The JWKS member naming the key that signs for each algorithm (``{"ES256": "k1"}``); the key
#: ``signing_kid`` names signs for its own algorithm and is the default.
SIGNING_KIDS: Final = "signing_kids"
#: The algorithms a signing key may have; RS256 is what every relying party supports (the default).
SIGNING_ALGS: Final = ("RS256", "ES256", "EdDSA")
DEFAULT_SIGNING_ALG: Final = "RS256"
#: RSA keys are never shorter (NIST SP 800-131A).
RSA_BITS: Final = 2048


def generate_key(alg: str = DEFAULT_SIGNING_ALG, kid: str | None = None) -> dict[str, Any]:
    """A new private JWK for ``alg``, with ``kid`` (default: its RFC 7638 thumbprint), ``alg`` and ``use``."""
    from joserfc import jwk  # here, not at the top: only the makers of keys pay for the crypto import

    key: jwk.Key
    if alg == "RS256":
        key = jwk.RSAKey.generate_key(RSA_BITS, private=True)
    elif alg == "ES256":
        key = jwk.ECKey.generate_key("P-256", private=True)
    elif alg == "EdDSA":
        key = jwk.OKPKey.generate_key("Ed25519", private=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}: use one of {', '.join(SIGNING_ALGS)}")
    return {**key.as_dict(private=True), "kid": kid or key.thumbprint(), "alg": alg, "use": "sig"}
