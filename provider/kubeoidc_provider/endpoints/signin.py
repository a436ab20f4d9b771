"""The end of every successful sign-in (password form or upstream): a new session, back to authorize."""

from __future__ import annotations

import dataclasses
import time

from starlette.responses import RedirectResponse, Response

from kubeoidc_provider.context import Provider
from kubeoidc_provider.endpoints.interaction import InteractionView
from kubeoidc_provider.state import Session, new_token
from kubeoidc_provider.users import User


async def signed_in(provider: Provider, view: InteractionView, user: User) -> Response:
    """The user proved who they are: a new session (new id), and back to the authorization request."""
    await provider.directory.remember(user)
    old = view.session
    await provider.state.delete_session(old.id)
    # Signing in again as the same user keeps the session (and its sid, which the clients know); as
    # someone else ends the previous user's session with every client (back-channel logout).
    sid = old.data.sid if old.data.user_id == user.id and old.data.sid else new_token(16)
    if old.data.user_id not in (None, user.id):
        await provider.backchannel.session_ended(old.data.sid)
    now = int(time.time())
    session = await provider.sessions.start(
        Session(csrf_token=new_token(16), user_id=user.id, auth_time=now, sid=sid)
    )
    await provider.backchannel.session_started(sid, now + provider.settings.session_ttl)
    interaction = dataclasses.replace(view.interaction, session_hash=session.hash, login_done=True)
    await provider.state.update_interaction(view.interaction_id, interaction)
    response = RedirectResponse(
        provider.url(f"/authorize/resume?interaction={view.interaction_id}"), status_code=303
    )
    provider.sessions.set_cookie(session, response)
    return response
