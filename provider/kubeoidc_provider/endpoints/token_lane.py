"""The token lane: ``POST /token`` in its two hot shapes, a machine client's client_credentials request
(``client_credentials_lane``) and a relying party's code exchange (``code_exchange_lane``), answered
ahead of routing and Authlib (``form_lane``); every other token request goes on to the token endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Scope

from kubeoidc_provider.context import Provider
from kubeoidc_provider.endpoints import client_credentials_lane, code_exchange_lane
from kubeoidc_provider.endpoints.form_lane import FormLane, Responder

#: A grant's answer: True once it has answered through the responder, False (having sent nothing) to let
#: the endpoint answer; it may leave in the ASGI scope what the endpoint should know of its attempt.
_Answer = Callable[[Provider, str, dict[str, str], Responder, Scope], Awaitable[bool]]


_ANSWERS: dict[str, _Answer] = {
    client_credentials_lane.GRANT_TYPE: client_credentials_lane.answer_client_credentials,
    code_exchange_lane.GRANT_TYPE: code_exchange_lane.answer_code_exchange,
}


class TokenLane(FormLane):
    def __init__(self, app: ASGIApp, provider: Provider) -> None:
        super().__init__(app, provider, "/token")
        # The metrics' child per grant, looked up once: the endpoint counts its answers the same way.
        self.issued = {
            grant_type: provider.metrics.token_requests.labels(grant_type, "ok") for grant_type in _ANSWERS
        }

    async def answer(
        self, authorization: str, form: dict[str, str], respond: Responder, scope: Scope
    ) -> bool:
        grant_type = form.get("grant_type", "")
        answer = _ANSWERS.get(grant_type)
        if answer is None or not await answer(self.provider, authorization, form, respond, scope):
            return False
        self.issued[grant_type].inc()
        return True
