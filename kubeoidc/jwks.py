"""Making signing keys: one private JWK per call, as both the operator (which rotates the provider's keys)
and the provider (``kubeoidc keys generate``, the dev mode) make them. Imports joserfc only.
"""

from __future__ import annotations

from typing import Any, Final

from joserfc import jwk

#: The algorithms a signing key may have; RS256 is what every relying party supports.
SIGNING_ALGS: Final = ("RS256", "ES256", "EdDSA")
#: RSA keys are never shorter (NIST SP 800-131A).
RSA_BITS: Final = 2048


def generate_key(alg: str = "RS256", kid: str | None = None) -> dict[str, Any]:
    """A new private JWK for ``alg``, with ``kid`` (default: its RFC 7638 thumbprint), ``alg`` and ``use``."""
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
