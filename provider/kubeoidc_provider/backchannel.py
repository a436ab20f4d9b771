"""OpenID Connect Back-Channel Logout 1.0: logout tokens POSTed to every client a session signed in to.

When a session ends (RP-initiated logout, another user signing in on the same browser, or its expiry)
or a grant is revoked, each client concerned that registered a ``backchannelLogoutURI`` gets a logout
token (§2.4: ``iss``, ``aud``, ``iat``, ``exp``, ``jti``, ``events``, ``sub``, ``sid``; never a
``nonce``; JOSE ``typ: logout+jwt``) in an ``application/x-www-form-urlencoded`` POST (§2.5).

Delivery runs in background tasks, off the request path: the browser's logout never waits for a client.
Each delivery has a bounded number of attempts with a timeout each and a growing pause between them; a
client that is down is logged and given up on (§2.8 leaves retries to the OP). With several replicas
sharing the state store, the replica that ends the session is the one that sends, and the session's list
of clients is consumed atomically (``State.end_session_clients``), so two replicas ending the same session
at once never both send.

Sessions expire silently in the state store, so each login files its session under the bucket of its
expiry time (``State.file_session_expiry``); every replica sweeps the buckets that are due, and the first
to claim a bucket sends for its sessions. A bucket stays claimable for ``EXPIRY_LOOKBACK`` seconds, so
sessions that expired while every replica was down are still told when one starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from kubeoidc_provider.registration import Client
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.signing import SigningKeys
from kubeoidc_provider.state import SessionClients, State, new_token

if TYPE_CHECKING:
    import httpx2

logger = logging.getLogger(__name__)

#: The event a logout token carries (§2.4).
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: The JOSE type of a logout token (§2.4), so that it can never pass for an ID token.
LOGOUT_TOKEN_TYP = "logout+jwt"
#: How long a logout token is valid: §2.4 recommends at most two minutes.
LOGOUT_TOKEN_TTL = 120
#: Sessions are filed for expiry in buckets this many seconds wide; a bucket is swept once it is past.
EXPIRY_BUCKET = 10
#: How often each replica looks for due buckets.
SWEEP_INTERVAL = 10.0
#: How far back a starting replica looks for buckets nobody swept.
EXPIRY_LOOKBACK = 3600


class BackchannelLogout:
    """Signs logout tokens and delivers them in the background, with bounded retries."""

    def __init__(
        self,
        *,
        issuer: str,
        signing: SigningKeys,
        registry: ClientRegistry,
        state: State,
        attempts: int = 3,
        timeout: float = 5.0,
        pause: float = 1.0,
    ) -> None:
        self.issuer = issuer
        self.signing = signing
        self.registry = registry
        self.state = state
        self.attempts = attempts
        self.timeout = timeout
        self.pause = pause
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx2.AsyncClient | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._swept_up_to: int | None = None

    def start(self) -> None:
        """Start sweeping expired sessions (on the running event loop)."""
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def session_started(self, sid: str, expires_at: int) -> None:
        """File a session for expiry: when it expires, its clients get logout tokens."""
        ttl = max(expires_at - int(time.time()), 1) + EXPIRY_LOOKBACK
        await self.state.file_session_expiry(sid, expires_at, EXPIRY_BUCKET, ttl)

    async def sweep(self, now: float) -> None:
        """Tell the clients of every session that expired in the buckets now past (claimed ones skipped)."""
        due = int(now) // EXPIRY_BUCKET - 1
        first = (
            self._swept_up_to + 1 if self._swept_up_to is not None else due - EXPIRY_LOOKBACK // EXPIRY_BUCKET
        )
        for number in range(first, due + 1):
            if _cancelled():
                return  # see _sweep_forever
            sessions = await self.state.claim_expiry_bucket(number, EXPIRY_LOOKBACK)
            for sid, expires_at in sessions or ():
                # A session extended since (the same user signing in again) is filed again, later.
                if expires_at <= now:
                    await self.session_ended(sid)
        self._swept_up_to = due

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep(time.time())
            except Exception:  # the state store may be briefly unreachable: the next sweep catches up
                logger.exception("sweeping expired sessions failed; trying again in %s s", SWEEP_INTERVAL)
            if _cancelled():
                # Cancelled (by close) during the sweep, and what it awaited swallowed the cancellation
                # (a client library may return from a command it was interrupted in). Stop all the same,
                # or close would wait for a sweeper that sleeps on.
                return
            await asyncio.sleep(SWEEP_INTERVAL)

    async def session_ended(self, sid: str | None) -> None:
        """Notify every client the session ``sid`` signed in to; only the first call for a session sends."""
        if not sid:
            return
        self.clients_signed_out(sid, await self.state.end_session_clients(sid))

    def clients_signed_out(self, sid: str, clients: SessionClients | None) -> None:
        """Notify the clients of the session ``sid``, taken from the store by the caller
        (``State.end_session_clients``, which hands them out once), as RP-initiated logout does to
        frame their front-channel pages too."""
        if clients is None:
            return
        for client_id in clients.client_ids:
            self._send(client_id, clients.user_id, sid, clients.client_uids.get(client_id, ""))

    def grant_revoked(self, client_id: str, user_id: str, sid: str | None) -> None:
        """Notify the client whose grant was revoked: the user's session with it is over."""
        self._send(client_id, user_id, sid)

    def logout_token(self, client: Client, user_id: str, sid: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": new_token(16),
            "events": {LOGOUT_EVENT: {}},
            "sub": user_id,
        }
        if sid:
            claims["sid"] = sid
        # Signed as the client's ID tokens are: the relying party checks both the same way.
        return self.signing.keys.sign(claims, typ=LOGOUT_TOKEN_TYP, alg=client.id_token_signed_response_alg)

    def _send(self, client_id: str, user_id: str, sid: str | None, client_uid: str = "") -> None:
        client = self.registry.get(client_id)
        if client is None or not client.backchannel_logout_uri:
            return
        if client_uid and client.uid != client_uid:
            # The client ID was pinned again by another OIDCClient: this session never signed in to it.
            return
        if client.backchannel_logout_session_required and not sid:
            logger.info(
                "no back-channel logout for client %s: it requires a sid and there is none", client_id
            )
            return
        token = self.logout_token(client, user_id, sid)
        task = asyncio.create_task(self._deliver(client.backchannel_logout_uri, token, client_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, uri: str, token: str, client_id: str) -> None:
        # httpx2 is loaded at the first delivery, not at start: a provider whose clients register no
        # back-channel logout URI never needs it (about 3 MiB). aiohttp would cost about 9 MiB more.
        import httpx2

        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False)
        for attempt in range(1, self.attempts + 1):
            try:
                answer = await self._http.post(uri, data={"logout_token": token})
                if answer.status_code in (200, 204):
                    logger.info("back-channel logout delivered to client %s", client_id)
                    return
                problem = f"HTTP {answer.status_code}"
            except (httpx2.HTTPError, TimeoutError) as error:
                problem = type(error).__name__
            logger.warning(
                "back-channel logout to client %s failed (attempt %d of %d): %s",
                client_id, attempt, self.attempts, problem,
            )  # fmt: skip
            if attempt < self.attempts:
                await asyncio.sleep(self.pause * 2 ** (attempt - 1))
        logger.error("back-channel logout to client %s given up after %d attempts", client_id, self.attempts)

    async def close(self, grace: float = 5.0) -> None:
        """Stop sweeping; let deliveries under way finish for ``grace`` seconds, then stop them."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _cancelled() -> bool:
    """Whether the running task was asked to stop, even if what it awaited swallowed the cancellation."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
