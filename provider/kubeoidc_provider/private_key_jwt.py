"""``private_key_jwt`` (OIDC Core §9; RFC 7523 §2.2, §3): what a client's own assertion must say
beyond what every assertion passes (``assertions.check_claims``).

The client is the assertion's issuer and subject; the assertion is short-lived (``exp`` at most
:data:`MAX_LIFETIME` seconds ahead, and after ``iat`` when it has one) and names itself with a ``jti``
that authenticates once: the state store remembers it until it expires, across replicas, so a captured
assertion cannot be replayed (RFC 7523 §3, item 7). The bound on ``exp`` bounds that memory too.

``client_secret_jwt`` (the same with an HMAC of the client secret) is refused on purpose: checking it
needs the plain secret, and the provider keeps only its hash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError

from kubeoidc_provider.assertions import LEEWAY, MAX_ASSERTION_LENGTH, AssertionRefused
from kubeoidc_provider.registration import Client

#: The longest life (``exp`` after now, and after ``iat``) an assertion may have, in seconds.
MAX_LIFETIME: Final = 300
#: A ``jti`` is an identifier, not a payload.
MAX_JTI_LENGTH: Final = 256


def check_own_assertion(claims: Mapping[str, Any], client: Client, now: float) -> tuple[str, int]:
    """The assertion's ``jti`` and how many seconds to remember it, once ``sub``, ``exp``, ``iat`` and
    ``jti`` are what a client's own assertion must carry; AssertionRefused otherwise.

    ``iss``, ``aud``, the signature and ``exp``'s presence were checked before (``verify_assertion``).
    """
    if claims.get("sub") != client.client_id:
        raise AssertionRefused("The client assertion's subject (sub) must be its client ID, as its iss.")
    exp = float(claims["exp"])
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise AssertionRefused(
            f"The client assertion expires too far ahead: at most {MAX_LIFETIME} seconds from now."
        )
    iat = claims.get("iat")
    if isinstance(iat, int | float) and exp - float(iat) > MAX_LIFETIME + LEEWAY:
        raise AssertionRefused(
            f"The client assertion lives too long: at most {MAX_LIFETIME} seconds after its iat."
        )
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise AssertionRefused("The client assertion needs a jti (a unique identifier, used once).")
    return jti, int(exp - now) + LEEWAY + 1


def unverified_issuer(assertion: str) -> str | None:
    """The ``iss`` an assertion claims, before any check: only to find the client whose keys verify it
    when the request does not name one (RFC 7521 §4.2 lets ``client_id`` be left out)."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        return None
    try:
        payload = json.loads(jws.extract_compact(assertion.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError):
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) and issuer else None
