"""``/healthz`` (the process answers), ``/readyz`` (the client registry is loaded and in step with the
Kubernetes API) and ``/metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from kubeoidc_provider.context import provider_of
from kubeoidc_provider.metrics import CONTENT_TYPE


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Not ready until the first list of OIDCClients and Secrets completed (no false ``invalid_client``)."""
    provider = provider_of(request)
    if not provider.registry.ready:
        return PlainTextResponse("the client registry is still loading", status_code=503)
    threshold = provider.settings.registry_stale_after
    cut_off = provider.feed.disconnected()
    if threshold and cut_off and max(cut_off.values()) > threshold:
        streams = ", ".join(f"{label} for {seconds:.0f} s" for label, seconds in sorted(cut_off.items()))
        return PlainTextResponse(
            f"the client registry is cut off from the Kubernetes API ({streams}): changes to clients "
            "since then are not seen",
            status_code=503,
        )
    return PlainTextResponse("ok")


async def metrics(request: Request) -> Response:
    provider = provider_of(request)
    provider.metrics.clients.set(len(provider.registry))
    return Response(provider.metrics.exposition(), media_type=CONTENT_TYPE)
