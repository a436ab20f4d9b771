"""``GET /jwks``: the public signing keys (RFC 7517), served as bytes computed when the keys load."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import provider_of

#: Short enough that a newly published key is picked up by relying parties before it signs.
CACHE_CONTROL = "public, max-age=300"


async def jwks(request: Request) -> Response:
    keys = provider_of(request).keys
    return Response(
        keys.public_jwks_bytes,
        media_type="application/jwk-set+json",
        headers={"Cache-Control": CACHE_CONTROL},
    )
