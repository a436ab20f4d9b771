"""``/healthz`` (the process answers), ``/readyz`` (the client registry is loaded and in step with the
Kubernetes API) and ``/metrics``, served on the health port only (``app.create_health_app``): kubelets
and Prometheus reach it, while the Ingress that routes the issuer never does."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from kubeoidc_provider.context import Provider
from kubeoidc_provider.metrics import CONTENT_TYPE


class Probes:
    """The health port's endpoints, bound to the provider (the health app has no lifespan of its own)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(self, request: Request) -> Response:
        """Not ready until the first list of OIDCClients and Secrets completed (no false
        ``invalid_client``), nor while the registry is cut off from the API for too long."""
        provider = self.provider
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

    async def metrics(self, request: Request) -> Response:
        self.provider.metrics.clients.set(len(self.provider.registry))
        return Response(self.provider.metrics.exposition(), media_type=CONTENT_TYPE)
