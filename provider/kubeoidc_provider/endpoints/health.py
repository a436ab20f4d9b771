"""``/healthz`` (the process answers), ``/readyz`` (the client registry is loaded) and ``/metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from kubeoidc_provider.context import provider_of
from kubeoidc_provider.metrics import CONTENT_TYPE


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Not ready until the first list of OIDCClients and Secrets completed (no false ``invalid_client``)."""
    if not provider_of(request).registry.ready:
        return PlainTextResponse("the client registry is still loading", status_code=503)
    return PlainTextResponse("ok")


async def metrics(request: Request) -> Response:
    provider = provider_of(request)
    provider.metrics.clients.set(len(provider.registry))
    return Response(provider.metrics.exposition(), media_type=CONTENT_TYPE)
