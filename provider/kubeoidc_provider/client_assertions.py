"""Client authentication by JWT assertion (RFC 7523 §2.2) at the token, revocation and introspection
endpoints: a Kubernetes ServiceAccount token (the ``kubernetes_service_account_jwt`` method), or an
assertion the client signs with its own key (``private_key_jwt``, OIDC Core §9).

The assertion is checked before Authlib runs, because the checks are asynchronous (a replay counter in
the state store, perhaps a key refresh) and Authlib's client authentication is not. The outcome is left
on the request: ``asserted_client_id`` when the assertion authenticates the client named by
``client_id``, else ``assertion_error``; the Authlib method registered under the method's name
(:func:`authenticate_by_assertion`) then hands Authlib the client, or nothing (``invalid_client``).

A ServiceAccount token's request must name its client (``client_id``, RFC 7521 §4.2): the token's
subject is the ServiceAccount, and one ServiceAccount may serve several clients. A client's own assertion
names it as its issuer, so there ``client_id`` may be left out.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kubeoidc_contract import PRIVATE_KEY_JWT_AUTH_METHOD, SERVICE_ACCOUNT_AUTH_METHOD
from kubeoidc_provider.assertions import ALGORITHMS, JWT_BEARER, AssertionRefused, verify_assertion
from kubeoidc_provider.client_keys import ClientKeySource
from kubeoidc_provider.cluster_issuer import ClusterIssuer
from kubeoidc_provider.oauth_request import ProviderRequest
from kubeoidc_provider.private_key_jwt import check_own_assertion, unverified_issuer
from kubeoidc_provider.registration import Client
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.remote_jwks import RemoteKeySets
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
        remote_keys: RemoteKeySets,
    ) -> None:
        self.registry = registry
        #: The keys of ``private_key_jwt`` clients that publish them at a ``jwksURI``.
        self.remote_keys = remote_keys
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
        client_id = form.get("client_id") or self._own_key_client_id(assertion)
        if not client_id:
            raise AssertionRefused("A client assertion needs client_id to name the client.")
        client = self.registry.get(client_id)
        method = client.token_endpoint_auth_method if client is not None else None
        if client is None or method not in (SERVICE_ACCOUNT_AUTH_METHOD, PRIVATE_KEY_JWT_AUTH_METHOD):
            raise AssertionRefused("This client does not authenticate with a client assertion.")
        now = time.time()
        if method == PRIVATE_KEY_JWT_AUTH_METHOD:
            await self._own_key(request, client, assertion, now)
            return client.client_id
        claims = await verify_assertion(assertion, self.cluster, self.audiences, now)
        account = check_service_account_token(claims, client, self.service_accounts)
        await self._count_use(claims, now)
        logger.debug("client %s authenticated as ServiceAccount %s", client_id, account)
        return client_id

    def _own_key_client_id(self, assertion: str) -> str | None:
        """The client an assertion without ``client_id`` claims to come from, if that client signs its
        own assertions (its ``iss``; a ServiceAccount token's issuer is the cluster's, not a client)."""
        issuer = unverified_issuer(assertion)
        client = self.registry.get(issuer) if issuer is not None else None
        if client is None or client.token_endpoint_auth_method != PRIVATE_KEY_JWT_AUTH_METHOD:
            return None
        return client.client_id

    async def _own_key(self, request: ProviderRequest, client: Client, assertion: str, now: float) -> None:
        """A ``private_key_jwt`` assertion: the client's own key, its own claims, a ``jti`` used once.

        The audience may also be the endpoint the request was sent to (revocation, introspection), as
        some relying parties put that there (RFC 7523 §3 allows the endpoint's URL).
        """
        source = ClientKeySource(client, self.remote_keys)
        pinned = client.token_endpoint_auth_signing_alg
        algorithms = (pinned,) if pinned is not None else ALGORITHMS
        audiences = self.audiences | {request.uri}
        claims = await verify_assertion(assertion, source, audiences, now, algorithms)
        jti, ttl = check_own_assertion(claims, client, now)
        if not await self.state.spend_assertion_id(client.client_id, jti, ttl):
            raise AssertionRefused("This client assertion was used before: its jti authenticates once.")

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
