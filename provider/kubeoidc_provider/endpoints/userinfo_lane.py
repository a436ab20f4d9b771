"""The userinfo lane: ``GET /userinfo`` answered ahead of routing (``userinfo.answer``, the same answer
the routed endpoint gives, errors included), for the resource servers and relying parties that call it
on every request. ``POST`` (a token in the body) and ``HEAD`` go through the router.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from kubeoidc_provider.context import Provider
from kubeoidc_provider.cors import routed_response_headers
from kubeoidc_provider.endpoints.userinfo import answer, bearer_of


class UserinfoLane:
    """ASGI middleware: answer ``GET /userinfo``; every other request goes to ``app``."""

    def __init__(self, app: ASGIApp, provider: Provider) -> None:
        self.app = app
        self.provider = provider
        self.path = f"{provider.settings.issuer_path}/userinfo"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        authorization: str | None = None
        origin = False
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:  # the first, as the router's reads it
                authorization = value.decode("latin-1")
            elif name == b"origin":
                origin = True
        response = await answer(self.provider, bearer_of(authorization or ""))
        response.raw_headers.extend(routed_response_headers(origin))
        await response(scope, receive, send)
