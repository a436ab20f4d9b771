"""Client authentication by JWT assertion (RFC 7523 §2.2) at the token, revocation and introspection
endpoints: today a Kubernetes ServiceAccount token (the ``kubernetes_service_account_jwt`` method).

The assertion is checked before Authlib runs, because the checks are asynchronous (a replay counter in
the state store, perhaps a key refresh) and Authlib's client authentication is not. The outcome is left
on the request: ``asserted_client_id`` when the assertion authenticates the client named by
``client_id``, else ``assertion_error``; the Authlib method registered under the method's name
(:func:`authenticate_by_assertion`) then hands Authlib the client, or nothing (``invalid_client``).

The request must name its client (``client_id``, RFC 7521 §4.2): the token's subject is the
ServiceAccount, and one ServiceAccount may serve several clients.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kubeoidc_contract import SERVICE_ACCOUNT_AUTH_METHOD
from kubeoidc_provider.assertions import JWT_BEARER, AssertionRefused, verify_assertion
from kubeoidc_provider.cluster_issuer import ClusterIssuer
from kubeoidc_provider.oauth_request import ProviderRequest
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.service_accounts import ServiceAccountDirectory, check_service_account_token
from kubeoidc_provider.state import State

logger = logging.getLogger(__name__)


class ClientAssertions:
    """Verifies the client assertion of a back-channel request and records the outcome on it."""

    def __init__(
        self,
        *,
        issuer: str,
        registry: ClientRegistry,
        state: State,
        cluster: ClusterIssuer,
        service_accounts: ServiceAccountDirectory,
        max_uses: int,
    ) -> None:
        self.registry = registry
        self.state = state
        self.cluster = cluster
        self.service_accounts = service_accounts
        self.max_uses = max_uses
        #: RFC 7523 §3: the audience identifies the authorization server: its issuer or token endpoint.
        self.audiences = frozenset({issuer, f"{issuer}/token"})

    async def check(self, request: ProviderRequest) -> None:
        """Verify the request's ``client_assertion``, if it has one (else leave it to other methods)."""
        form = request.form
        if "client_assertion" not in form and "client_assertion_type" not in form:
            return
        try:
            request.asserted_client_id = await self._authenticate(request)
        except AssertionRefused as refusal:
            request.assertion_error = str(refusal)
            logger.info("client assertion refused for client %r: %s", form.get("client_id"), refusal)

    async def _authenticate(self, request: ProviderRequest) -> str:
        form = request.form
        if form.get("client_assertion_type") != JWT_BEARER:
            raise AssertionRefused(f"client_assertion_type must be {JWT_BEARER}.")
        assertion = form.get("client_assertion") or ""
        client_id = form.get("client_id")
        if not client_id:
            raise AssertionRefused("A client assertion needs client_id to name the client.")
        client = self.registry.get(client_id)
        if client is None or client.token_endpoint_auth_method != SERVICE_ACCOUNT_AUTH_METHOD:
            raise AssertionRefused("This client does not authenticate with a client assertion.")
        now = time.time()
        claims = await verify_assertion(assertion, self.cluster, self.audiences, now)
        account = check_service_account_token(claims, client, self.service_accounts)
        await self._count_use(claims, now)
        logger.debug("client %s authenticated as ServiceAccount %s", client_id, account)
        return client_id

    async def _count_use(self, claims: dict[str, Any], now: float) -> None:
        """Limit the replays of one assertion (by ``jti``) within its life (RFC 7523 §3, item 7)."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return
        ttl = int(claims["exp"] - now) + 1
        uses = await self.state.count_assertion_use(str(claims["iss"]), jti, ttl)
        if uses > self.max_uses:
            raise AssertionRefused(
                f"This client assertion has been used {self.max_uses} times: present a fresh one."
            )


def authenticate_by_assertion(query_client: Any, request: ProviderRequest) -> Any:
    """Authlib's client authentication method: the client the assertion check authenticated, or None."""
    client_id = request.asserted_client_id
    return query_client(client_id) if client_id is not None else None
