"""JWT client assertions (RFC 7523 §2.2, §3): the checks every assertion passes, whoever signed it.

A client authenticates at the token, revocation and introspection endpoints by sending
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a signed JWT as
``client_assertion``. What differs between kinds of assertion is only where the verification keys come
from and what the subject must be: a Kubernetes ServiceAccount token is signed by the cluster's
service-account issuer (``cluster_issuer``), a ``private_key_jwt`` by the client's own keys. Each such
source is a :class:`KeySource`; :func:`verify_assertion` does the rest: the signature, ``iss``, ``aud``,
``exp``, ``nbf`` and ``iat``.

Everything here runs on the request path and never waits on the network: a key source answers from
memory, and may only ask its background fetcher for fresher keys (see ``KeySource.refresh``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Final, Protocol

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key

#: ``client_assertion_type`` of a JWT client assertion (RFC 7523 §2.2).
JWT_BEARER: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Asymmetric algorithms only: a symmetric one would let anyone who can verify also sign, and ``none``
#: signs nothing (RFC 8725 §3.1).
ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Clock skew tolerated between the signer and us, in seconds, for ``exp``, ``nbf`` and ``iat``.
LEEWAY: Final = 30
#: No legitimate assertion comes close (a ServiceAccount token is about 1 KiB).
MAX_ASSERTION_LENGTH: Final = 16 * 1024


class AssertionRefused(Exception):
    """The assertion does not authenticate the client: ``invalid_client`` (RFC 6749 §5.2).

    The message is the ``error_description`` and goes to the log: it never quotes the assertion.
    """


class KeySource(Protocol):
    """Where the keys that sign one kind of assertion come from, and who their issuer is."""

    @property
    def issuer(self) -> str | None:
        """The ``iss`` the assertions must carry; None while it is not known yet."""

    def key(self, kid: str | None) -> Key | None:
        """The verification key with this ``kid`` (a key set of one key may ignore it), from memory."""

    async def refresh(self) -> bool:
        """Ask for fresher keys after an unknown ``kid``: True once new keys are in, False when a
        refresh is not allowed now (rate limit) or did not finish in a short bound."""


def header_of(assertion: str) -> Mapping[str, Any]:
    """The JOSE header of a compact JWS, unverified (to choose the key); AssertionRefused if malformed."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise AssertionRefused("The client assertion is too large.")
    try:
        header = jws.extract_compact(assertion.encode("ascii")).protected
    except (JoseError, ValueError, UnicodeError) as error:
        raise AssertionRefused("The client assertion is not a signed JWT.") from error
    return header


async def verify_assertion(
    assertion: str,
    source: KeySource,
    audiences: Collection[str],
    now: float,
    algorithms: Collection[str] = ALGORITHMS,
) -> dict[str, Any]:
    """The claims of ``assertion`` once its signature, issuer, audience and times check out.

    ``algorithms`` narrows :data:`ALGORITHMS` (a client may name the one it signs with). An unknown
    ``kid`` asks ``source`` for fresher keys once (the signer may have rotated its keys).
    """
    header = header_of(assertion)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS or alg not in algorithms:
        raise AssertionRefused("The client assertion's algorithm is not accepted.")
    if kid is not None and not isinstance(kid, str):
        raise AssertionRefused("The client assertion's key ID is not a string.")
    key = source.key(kid)
    if key is None and await source.refresh():
        key = source.key(kid)
    if key is None:
        raise AssertionRefused("The client assertion is signed by a key this provider does not trust.")
    key_alg = key.get("alg")
    if key_alg is not None and key_alg != alg:
        raise AssertionRefused("The client assertion's algorithm does not match its key.")
    try:
        claims = jwt.decode(assertion, key, algorithms=[alg]).claims
    except (JoseError, ValueError, json.JSONDecodeError) as error:
        raise AssertionRefused("The client assertion's signature does not verify.") from error
    check_claims(claims, source.issuer, audiences, now)
    return claims


def check_claims(
    claims: Mapping[str, Any], issuer: str | None, audiences: Collection[str], now: float
) -> None:
    """RFC 7523 §3: ``iss``, ``sub``, ``aud``, ``exp`` (required), ``nbf`` and ``iat`` (when present)."""
    if issuer is None or claims.get("iss") != issuer:
        raise AssertionRefused("The client assertion's issuer is not the one this provider trusts.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise AssertionRefused("The client assertion has no subject.")
    aud = claims.get("aud")
    presented = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(value, str) and value in audiences for value in presented):
        raise AssertionRefused(
            "The client assertion's audience must be this provider's issuer or its token endpoint."
        )
    exp = _number(claims, "exp")
    if exp is None:
        raise AssertionRefused("The client assertion has no expiry (exp).")
    if exp <= now - LEEWAY:
        raise AssertionRefused("The client assertion has expired.")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + LEEWAY:
        raise AssertionRefused("The client assertion is not valid yet (nbf).")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + LEEWAY:
        raise AssertionRefused("The client assertion was issued in the future (iat).")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AssertionRefused(f"The client assertion's {name} is not a number.")
    return float(value)
