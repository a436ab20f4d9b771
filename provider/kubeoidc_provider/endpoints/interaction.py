"""Loading the pending authorization request behind the login and consent pages."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from kubeoidc_provider.context import Provider
from kubeoidc_provider.registration import Client
from kubeoidc_provider.sessions import BrowserSession
from kubeoidc_provider.state import Interaction


@dataclass(frozen=True, slots=True)
class InteractionView:
    """An interaction that belongs to this browser, with the client it is for."""

    interaction_id: str
    interaction: Interaction
    session: BrowserSession
    client: Client


async def load_interaction(
    provider: Provider, request: Request, interaction_id: str
) -> InteractionView | None:
    """The interaction if it exists, belongs to this browser's session and its client is still served."""
    session = await provider.sessions.load(request)
    interaction = await provider.state.get_interaction(interaction_id) if interaction_id else None
    if session is None or interaction is None or interaction.session_hash != session.hash:
        return None
    client = provider.registry.get(interaction.params.get("client_id", ""))
    if client is None:
        return None
    return InteractionView(interaction_id, interaction, session, client)
