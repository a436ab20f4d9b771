"""What the provider remembers between requests, on top of the generic storage interface.

Every access is a coroutine, as the storage's are. Authlib's grants are synchronous and run on a worker
thread (the token endpoint puts them there); they reach the state through :func:`wait_on`.

Sessions, pending interactions, authorization codes, refresh tokens, consents, revocations and login
throttling each get a ``kind`` of storage entry. Anything a client or browser holds (session cookie,
code, refresh token) is stored under its SHA-256, never as itself, so a leaked state store cannot be
replayed against the provider.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from kubeoidc_provider.storage import Storage

#: How long a remembered consent lasts (a year): a user re-consents only when a client asks for more.
CONSENT_TTL = 365 * 86400
#: How long a pending authorization request may wait for the user to log in and consent.
INTERACTION_TTL = 600


_T = TypeVar("_T")


def wait_on(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a state coroutine on ``loop`` from a worker thread, and wait for its result there.

    For Authlib's synchronous hooks: the storage's clients belong to the loop (a Redis connection is
    made on the loop that uses it), so the coroutine runs there while this thread waits. Never call it
    on the loop's own thread: it would wait for itself.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()
    coroutine.close()
    raise RuntimeError("wait_on() was called on an event loop's thread: await the coroutine instead")


def token_hash(value: str) -> str:
    """The storage key of a bearer value (code, refresh token, session id)."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_token(nbytes: int = 32) -> str:
    """A fresh bearer value: 256 bits from the OS's CSPRNG, URL-safe."""
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True, slots=True)
class Session:
    """A browser's session: anonymous until a user logs in."""

    csrf_token: str
    user_id: str | None = None
    auth_time: int | None = None
    #: The session's id as relying parties see it (``sid``, OIDC Back-Channel Logout 1.0 §2.1), from login.
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class SessionClients:
    """The clients a session signed in to: who gets a logout token when it ends."""

    user_id: str
    client_ids: tuple[str, ...] = ()
    #: The uid of the OIDCClient behind each client ID when the session signed in to it: a client ID
    #: pinned again by another OIDCClient since then gets no logout token for this session.
    client_uids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Interaction:
    """An authorization request waiting for the user to log in and consent."""

    params: dict[str, str]
    session_hash: str
    #: The user logged in during this interaction: ``prompt=login`` and ``max_age`` are satisfied.
    login_done: bool = False
    #: The user approved this request on the consent page.
    consent_done: bool = False
    #: For a device's request (RFC 8628), the key of its device code: the outcome goes there, not to a
    #: redirect URI.
    device_key: str | None = None


@dataclass(frozen=True, slots=True)
class CodeGrant:
    """What an authorization code stands for (OIDC Core §3.1.2)."""

    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    auth_time: int
    grant_id: str
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    #: The browser session's ``sid``, carried into the ID token.
    sid: str | None = None
    #: The ``claims`` request parameter, as ``ClaimsRequest.to_json()``.
    claims: dict[str, list[str]] | None = None
    #: The uid of the OIDCClient it was issued to: a client ID pinned again by another OIDCClient is
    #: another client.
    client_uid: str = ""


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a refresh token stands for; each use spends it and issues a successor (rotation)."""

    client_id: str
    scope: str
    user_id: str
    auth_time: int
    grant_id: str
    expires_at: int
    issued_at: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: The uid of the OIDCClient it was issued to (a grant from before uids were kept has ""): a client
    #: ID pinned again by another OIDCClient never inherits the grant.
    client_uid: str = ""


@dataclass(frozen=True, slots=True)
class Spent:
    """The outcome of spending a single-use value: ``first`` is False on a replay."""

    first: bool
    grant_id: str


class State:
    """Typed access to the storage for each thing the provider remembers."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # Sessions ---------------------------------------------------------------------------------------
    async def save_session(self, session_id: str, session: Session, ttl: int) -> None:
        await self.storage.put("session", token_hash(session_id), asdict(session), ttl)

    async def get_session(self, session_id: str) -> Session | None:
        value = await self.storage.get("session", token_hash(session_id))
        return Session(**value) if value is not None else None

    async def delete_session(self, session_id: str) -> None:
        await self.storage.delete("session", token_hash(session_id))

    async def add_session_client(
        self, sid: str, user_id: str, client_id: str, ttl: int, *, client_uid: str = ""
    ) -> None:
        """Remember that the session ``sid`` signed in to ``client_id`` (the OIDCClient ``client_uid``)."""
        current = await self.session_clients(sid)
        same_user = current is not None and current.user_id == user_id
        known = current.client_ids if current is not None and same_user else ()
        uids = dict(current.client_uids) if current is not None and same_user else {}
        if client_id not in known or uids.get(client_id, "") != client_uid:
            uids[client_id] = client_uid
            ids = known if client_id in known else (*known, client_id)
            value = {"user_id": user_id, "client_ids": list(ids), "client_uids": uids}
            await self.storage.put("session_clients", sid, value, ttl)

    async def session_clients(self, sid: str) -> SessionClients | None:
        value = await self.storage.get("session_clients", sid)
        return _session_clients(value) if value is not None else None

    async def file_session_expiry(self, sid: str, expires_at: int, bucket: int, ttl: int) -> None:
        """File the session ``sid`` under the expiry bucket of ``expires_at`` (``bucket`` seconds wide).

        A bucket's entries are numbered by an atomic counter, so replicas filing at once never overwrite
        each other; ``session_expires`` keeps the latest expiry of a session that was extended.
        """
        number = expires_at // bucket
        index = await self.storage.incr("expiry_filed", str(number), ttl)
        await self.storage.put("expiry", f"{number}:{index}", {"sid": sid}, ttl)
        await self.storage.put("session_expires", sid, {"at": expires_at}, ttl)

    async def claim_expiry_bucket(self, number: int, ttl: int) -> list[tuple[str, int]] | None:
        """The sessions filed under bucket ``number`` with their latest expiry, to the first caller only."""
        if await self.storage.incr("expiry_claimed", str(number), ttl) != 1:
            return None
        count = await self.storage.incr("expiry_filed", str(number), ttl) - 1
        found = []
        for index in range(1, count + 1):
            entry = await self.storage.get("expiry", f"{number}:{index}")
            latest = await self.storage.get("session_expires", entry["sid"]) if entry else None
            if entry is not None and latest is not None:
                found.append((str(entry["sid"]), int(latest["at"])))
        return found

    async def end_session_clients(self, sid: str) -> SessionClients | None:
        """The clients of an ending session, once: a second call (another replica) gets None."""
        consumed = await self.storage.consume("session_clients", sid)
        if consumed is None or not consumed.first:
            return None
        return _session_clients(consumed.value)

    # Interactions -----------------------------------------------------------------------------------
    async def save_interaction(self, interaction: Interaction) -> str:
        interaction_id = new_token(16)
        await self.storage.put("interaction", interaction_id, asdict(interaction), INTERACTION_TTL)
        return interaction_id

    async def update_interaction(self, interaction_id: str, interaction: Interaction) -> None:
        await self.storage.put("interaction", interaction_id, asdict(interaction), INTERACTION_TTL)

    async def get_interaction(self, interaction_id: str) -> Interaction | None:
        value = await self.storage.get("interaction", interaction_id)
        return Interaction(**value) if value is not None else None

    async def delete_interaction(self, interaction_id: str) -> None:
        await self.storage.delete("interaction", interaction_id)

    async def finish_interaction(self, interaction_id: str) -> bool:
        """End a pending request, atomically: True for exactly one caller, the one that may issue its
        outcome (a code, a device approval); False for every racing resume, here or on another replica."""
        consumed = await self.storage.consume("interaction", interaction_id)
        await self.storage.delete("interaction", interaction_id)
        return consumed is not None and consumed.first

    # Authorization codes ----------------------------------------------------------------------------
    async def save_code(self, code: str, grant: CodeGrant, ttl: int) -> None:
        await self.storage.put("code", token_hash(code), asdict(grant), ttl)

    async def spend_code(self, code: str) -> tuple[CodeGrant, Spent] | None:
        """Consume a code atomically; a replay comes back with ``first=False`` so the caller revokes."""
        consumed = await self.storage.consume("code", token_hash(code))
        if consumed is None:
            return None
        grant = CodeGrant(**consumed.value)
        return grant, Spent(first=consumed.first, grant_id=grant.grant_id)

    # Refresh tokens ---------------------------------------------------------------------------------
    async def save_refresh_token(self, token: str, grant: RefreshGrant, ttl: int) -> None:
        await self.storage.put("refresh_token", token_hash(token), asdict(grant), ttl)

    async def find_refresh_token(self, token: str) -> RefreshGrant | None:
        """A live refresh token's grant: None once it is spent (rotated), revoked or expired."""
        key = token_hash(token)
        value = await self.storage.get("refresh_token", key)
        if value is None or await self.storage.get("refresh_token_spent", key) is not None:
            return None
        return RefreshGrant(**value)

    async def spend_refresh_token(self, token: str) -> tuple[RefreshGrant, Spent] | None:
        key = token_hash(token)
        consumed = await self.storage.consume("refresh_token", key)
        if consumed is None:
            return None
        grant = RefreshGrant(**consumed.value)
        if consumed.first:
            # Marks it spent for introspection; consume() alone already refuses a second use.
            ttl = max(grant.expires_at - int(time.time()), 1)
            await self.storage.put("refresh_token_spent", key, {}, ttl)
        return grant, Spent(first=consumed.first, grant_id=grant.grant_id)

    async def delete_refresh_token(self, token: str) -> None:
        await self.storage.delete("refresh_token", token_hash(token))

    # Opaque access tokens ---------------------------------------------------------------------------
    async def save_access_token(self, token: str, claims: dict[str, Any], ttl: int) -> None:
        """An opaque access token's claims, under the token's SHA-256 (the token itself is never kept)."""
        await self.storage.put("access_token", token_hash(token), claims, max(ttl, 1))

    async def find_access_token(self, token: str) -> dict[str, Any] | None:
        return await self.storage.get("access_token", token_hash(token))

    async def delete_access_token(self, token: str) -> None:
        """Revoke an opaque access token: it is found no more."""
        await self.storage.delete("access_token", token_hash(token))

    # Revocation -------------------------------------------------------------------------------------
    async def revoke_grant(self, grant_id: str, ttl: int) -> None:
        """Revoke everything issued under one authorization: its refresh tokens and access tokens."""
        await self.storage.put("revoked_grant", grant_id, {}, ttl)

    async def is_grant_revoked(self, grant_id: str) -> bool:
        return await self.storage.get("revoked_grant", grant_id) is not None

    async def revoke_access_token(self, jti: str, ttl: int) -> None:
        await self.storage.put("revoked_jti", jti, {}, max(ttl, 1))

    async def is_access_token_revoked(self, jti: str) -> bool:
        return await self.storage.get("revoked_jti", jti) is not None

    # Consents ---------------------------------------------------------------------------------------
    # Consents are keyed by the OIDCClient's uid, not its client ID: a pinned ID freed and pinned again
    # by another OIDCClient inherits nobody's consent.
    async def save_consent(self, user_id: str, client_uid: str, scopes: frozenset[str]) -> None:
        await self.storage.put("consent", _pair(user_id, client_uid), {"scopes": sorted(scopes)}, CONSENT_TTL)

    async def consented_scopes(self, user_id: str, client_uid: str) -> frozenset[str]:
        value = await self.storage.get("consent", _pair(user_id, client_uid))
        return frozenset(value["scopes"]) if value is not None else frozenset()

    # Identity sources -------------------------------------------------------------------------------
    async def save_identity(self, subject: str, profile: dict[str, Any], ttl: int) -> None:
        """What an identity source said about a person at their last sign-in, by their subject."""
        await self.storage.put("identity", token_hash(subject), profile, ttl)

    async def get_identity(self, subject: str) -> dict[str, Any] | None:
        return await self.storage.get("identity", token_hash(subject))

    async def save_upstream_login(self, state: str, pending: dict[str, Any]) -> None:
        """A browser sent to an upstream OpenID Provider, keyed by the ``state`` it must bring back."""
        await self.storage.put("upstream_login", token_hash(state), pending, INTERACTION_TTL)

    async def take_upstream_login(self, state: str) -> dict[str, Any] | None:
        """The pending upstream sign-in for ``state``, once: a replayed callback finds nothing."""
        consumed = await self.storage.consume("upstream_login", token_hash(state))
        return consumed.value if consumed is not None and consumed.first else None

    # Client assertions ------------------------------------------------------------------------------
    async def count_assertion_use(self, issuer: str, jti: str, ttl: int) -> int:
        """How many times the assertion ``jti`` of ``issuer`` has authenticated, this use included
        (counted until it expires: ``ttl`` seconds)."""
        return await self.storage.incr("assertion_uses", _pair(issuer, jti), max(ttl, 1))

    async def spend_assertion_id(self, client_id: str, jti: str, ttl: int) -> bool:
        """Whether this is the first use of the client's assertion ``jti`` (remembered ``ttl`` seconds,
        atomically across replicas: two requests racing with one assertion get one True)."""
        return await self.storage.incr("assertion_jti", _pair(client_id, jti), max(ttl, 1)) == 1

    # Login throttling -------------------------------------------------------------------------------
    # Counting and checking are one atomic increment: an attempt is counted as a failure before the
    # password is checked, and taken back when it turns out not to be one. Racing attempts can never all
    # see "not blocked yet": at most ``limit`` of them are checked in a window, on any number of replicas.
    async def reserve_login_attempt(self, key: str, window: int, limit: int) -> bool:
        """Count an attempt for ``key`` (a user or an address); False once it is past ``limit`` in the
        current ``window`` seconds: refuse it without checking anything."""
        return await self.storage.incr("failed_logins", key, window) <= limit

    async def release_login_attempt(self, key: str) -> None:
        """The reserved attempt did not fail (right password, or nothing could be checked)."""
        await self.storage.uncount("failed_logins", key)

    async def clear_failed_logins(self, key: str) -> None:
        await self.storage.delete("failed_logins", key)


def _session_clients(value: dict[str, Any]) -> SessionClients:
    return SessionClients(value["user_id"], tuple(value["client_ids"]), dict(value.get("client_uids", {})))


def _pair(user_id: str, client_id: str) -> str:
    return hashlib.sha256(f"{user_id}\x00{client_id}".encode()).hexdigest()
