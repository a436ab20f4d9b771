"""The consent page: the user grants (or refuses) the scopes a client asks for.

A grant is remembered per user and client; the page comes back only when the client asks for more,
or with ``prompt=consent``.
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints.authorize import deny, expired_interaction
from kubeoidc_provider.endpoints.device import deny_device
from kubeoidc_provider.endpoints.form import read_page_form
from kubeoidc_provider.endpoints.interaction import InteractionView, load_interaction
from kubeoidc_provider.oauth_client import granted_scope

#: What each scope lets the client see, in the user's words.
SCOPE_DESCRIPTIONS = {
    "openid": "Know who you are (your account identifier)",
    "profile": "See your name, username and profile (picture, locale, birthdate...)",
    "email": "See your email address",
    "groups": "See the groups you belong to",
    "offline_access": "Stay signed in to the application when you are away",
    "address": "See your postal address",
    "phone": "See your phone number",
}


async def consent_page(request: Request) -> Response:
    provider = provider_of(request)
    view = await load_interaction(provider, request, request.query_params.get("interaction", ""))
    if view is None or view.session.data.user_id is None:
        return expired_interaction(provider)
    return _render(provider, view)


async def consent_submit(request: Request) -> Response:
    provider = provider_of(request)
    form = await read_page_form(request)
    view = await load_interaction(provider, request, str(form.get("interaction", "")))
    if view is None or view.session.data.user_id is None:
        return expired_interaction(provider)
    if not provider.sessions.check_csrf(view.session, str(form.get("csrf_token", ""))):
        return provider.pages.error(403, "The form has expired", "Reload the page and try again.")
    params = view.interaction.params
    if form.get("decision") != "allow":
        await provider.state.delete_interaction(view.interaction_id)
        if view.interaction.device_key is not None:
            return await deny_device(provider, view.session, view.interaction)
        return deny(provider, request, params.items())
    scopes = frozenset(granted_scope(params.get("scope"), view.client).split())
    granted = await provider.state.consented_scopes(view.session.data.user_id, view.client.uid)
    await provider.state.save_consent(view.session.data.user_id, view.client.uid, granted | scopes)
    await provider.state.update_interaction(
        view.interaction_id, dataclasses.replace(view.interaction, consent_done=True)
    )
    return RedirectResponse(
        provider.url(f"/authorize/resume?interaction={view.interaction_id}"), status_code=303
    )


def _render(provider: Provider, view: InteractionView) -> Response:
    # What the client will get, not what it asked for: scopes it may not have are left out.
    scopes = granted_scope(view.interaction.params.get("scope"), view.client).split()
    return provider.pages.render(
        "consent.html",
        action=provider.url("/consent"),
        interaction_id=view.interaction_id,
        csrf_token=view.session.data.csrf_token,
        client=view.client,
        scopes=[(scope, SCOPE_DESCRIPTIONS.get(scope, scope)) for scope in scopes],
    )
