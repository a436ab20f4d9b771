"""The provider's one CORS policy (Fetch standard), for routed endpoints and published documents alike.

Browsers' JavaScript clients (SPAs) call discovery, JWKS, token and userinfo cross-origin. Any origin
may, and never with credentials: no cookie of ours is ever sent or honoured cross-origin.
"""

from __future__ import annotations

from typing import Final

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

ALLOW_ORIGIN: Final = "*"
ALLOW_HEADERS: Final = ("Authorization", "Content-Type")
#: Seconds a browser may cache a preflight's answer.
MAX_AGE: Final = 600


def cors_middleware(methods: tuple[str, ...] = ("GET", "POST")) -> Middleware:
    """The policy for routed endpoints, as Starlette's middleware."""
    return Middleware(
        CORSMiddleware,
        allow_origins=[ALLOW_ORIGIN],
        allow_methods=list(methods),
        allow_headers=list(ALLOW_HEADERS),
        max_age=MAX_AGE,
    )


def response_headers() -> list[tuple[bytes, bytes]]:
    """The CORS headers of an actual (not preflight) response, for ASGI code ahead of the middleware."""
    return [(b"access-control-allow-origin", ALLOW_ORIGIN.encode())]


#: What the middleware adds to a routed response: ``Vary: Origin`` always, the allowed origin when the
#: request has an ``Origin``. Code answering ahead of the middleware (the lanes) adds the same.
_ROUTED = ((b"vary", b"Origin"),)
_ROUTED_CROSS_ORIGIN = (*_ROUTED, *response_headers())


def routed_response_headers(origin: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers the middleware would add to a routed response; ``origin``: the request has one."""
    return _ROUTED_CROSS_ORIGIN if origin else _ROUTED


def preflight_headers(methods: bytes) -> list[tuple[bytes, bytes]]:
    """What a preflight answer allowing ``methods`` (``b"GET, HEAD, OPTIONS"``) adds to those."""
    return [
        (b"access-control-allow-methods", methods),
        (b"access-control-allow-headers", ", ".join(ALLOW_HEADERS).encode()),
        (b"access-control-max-age", str(MAX_AGE).encode()),
    ]
