"""Signing in through an upstream OpenID Provider: the button's ``POST /login/upstream``, and ``/callback``.

The button posts the interaction, the source and the session's CSRF token; the browser goes upstream
with a fresh ``state``, ``nonce`` and PKCE verifier, kept server-side under the ``state`` (single use).
The callback takes that record once (a replayed or forged callback finds nothing), checks that it
belongs to this browser's session and interaction, and lets the source check the response
(:mod:`kubeoidc_provider.identity.upstream`). Every failure is an error page (400, or 502/503 when the
upstream misbehaves or is down), never a 500 and never a redirect to the client.
"""

from __future__ import annotations

import dataclasses
import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints.authorize import expired_interaction
from kubeoidc_provider.endpoints.interaction import InteractionView, load_interaction
from kubeoidc_provider.endpoints.signin import signed_in
from kubeoidc_provider.identity.upstream import PendingLogin, UpstreamError, UpstreamSource

logger = logging.getLogger(__name__)

#: Failures of the upstream itself (502), not of this sign-in (400).
_UPSTREAM_FAULTS = frozenset(
    {"UpstreamUnavailable", "IssuerMismatch", "DiscoveryIncomplete", "BadJWKS", "UserinfoFailed"}
)
_NOT_IN_PROGRESS = (
    "The response from your identity provider does not belong to a sign-in in progress here (it was "
    "already used, has expired, or was not started in this browser). Start again from the application."
)


async def begin(request: Request) -> Response:
    """``POST /login/upstream``: the button of one upstream source."""
    provider = provider_of(request)
    form = await request.form()
    view = await load_interaction(provider, request, str(form.get("interaction", "")))
    if view is None:
        return expired_interaction(provider)
    if not provider.sessions.check_csrf(view.session, str(form.get("csrf_token", ""))):
        return provider.pages.error(403, "The form has expired", "Reload the sign-in page and try again.")
    name = str(form.get("source", ""))
    source = provider.directory.sources.get(name)
    allowed = view.client.identity_sources
    if not isinstance(source, UpstreamSource) or (allowed and name not in allowed):
        return provider.pages.error(
            400, "Unknown sign-in option", "Go back and choose one of the options shown."
        )
    return await redirect_upstream(provider, view, source)


async def redirect_upstream(provider: Provider, view: InteractionView, source: UpstreamSource) -> Response:
    """Send the browser to ``source``, remembering what its answer must match."""
    try:
        url, pending = await source.begin(view.interaction_id, view.interaction.params.get("login_hint"))
    except UpstreamError as error:
        return _failed(provider, source.name, error)
    await provider.state.save_upstream_login(pending.state, dataclasses.asdict(pending))
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def callback(request: Request) -> Response:
    """``GET /callback``: where every upstream sends the browser back (OIDC Core §3.1.2.5)."""
    provider = provider_of(request)
    params = {key: value[:2048] for key, value in request.query_params.items()}
    record = (
        await provider.state.take_upstream_login(params.get("state", "")) if params.get("state") else None
    )
    if record is None:
        provider.metrics.logins.labels("upstream_unknown_state").inc()
        return provider.pages.error(400, "This sign-in cannot be completed", _NOT_IN_PROGRESS)
    pending = PendingLogin(**record)
    view = await load_interaction(provider, request, pending.interaction_id)
    if view is None:
        return expired_interaction(provider)
    source = provider.directory.sources.get(pending.source)
    if not isinstance(source, UpstreamSource):
        return provider.pages.error(
            400, "This sign-in cannot be completed", "That sign-in option was removed."
        )
    try:
        user = await source.finish(params, pending)
    except UpstreamError as error:
        return _failed(provider, source.name, error)
    provider.metrics.logins.labels("succeeded").inc()
    return await signed_in(provider, view, user)


def _failed(provider: Provider, source: str, error: UpstreamError) -> Response:
    provider.metrics.logins.labels("upstream_failed").inc()
    logger.info("sign-in through upstream %s failed: %s", source, error.reason)
    status = (
        503 if error.reason == "UpstreamUnavailable" else 502 if error.reason in _UPSTREAM_FAULTS else 400
    )
    return provider.pages.error(status, "Sign-in failed", error.message, error.reason)
