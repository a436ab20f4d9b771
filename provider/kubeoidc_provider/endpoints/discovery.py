"""``GET /.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4), as precomputed bytes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import provider_of

CACHE_CONTROL = "public, max-age=300"


async def openid_configuration(request: Request) -> Response:
    provider = provider_of(request)
    return Response(
        provider.discovery, media_type="application/json", headers={"Cache-Control": CACHE_CONTROL}
    )
