"""An upstream OpenID Provider as an identity source: the authorization code flow with PKCE, as a client.

Authlib's client (``AsyncOAuth2Client`` over httpx) builds the authorization URL (``state``, ``nonce``,
S256 ``code_challenge``) and redeems the code; the ID token is checked with joserfc against the
upstream's JWKS (OIDC Core §3.1.3.7): signature, ``iss``, ``aud`` (and ``azp`` when several), ``exp``,
``iat`` and ``nonce``. A token signed with a key the cached JWKS lacks makes the JWKS be read again
once, so an upstream's key rotation needs no restart.

Every failure is an :class:`UpstreamError` whose ``message`` is fit for the user's page; details go to
the log without codes, tokens or secrets.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from kubeoidc_provider.identity.spec import OIDCDefinition
from kubeoidc_provider.identity.subjects import source_subject
from kubeoidc_provider.users import ADDRESS_FIELDS, PROFILE_CLAIMS, User

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

__all__ = ["PendingLogin", "UpstreamError", "UpstreamSource"]

logger = logging.getLogger(__name__)
#: Seconds to wait for any upstream request.
HTTP_TIMEOUT = 10.0
#: How long discovery is trusted before it is read again.
DISCOVERY_TTL = 3600
#: Clock skew allowed on ``exp`` / ``iat``.
LEEWAY = 60
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class UpstreamError(Exception):
    """Signing in through the upstream failed; ``message`` is what the user is shown."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        #: A CamelCase word for logs and metrics.
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What the provider keeps between sending the browser upstream and its coming back."""

    source: str
    interaction_id: str
    state: str
    nonce: str
    code_verifier: str


class UpstreamSource:
    """Signs people in through one upstream OpenID Provider."""

    def __init__(self, definition: OIDCDefinition, redirect_uri: str) -> None:
        self.definition = definition
        self.name = definition.name
        self.redirect_uri = redirect_uri
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    # Discovery --------------------------------------------------------------------------------------
    async def metadata(self, *, fresh: bool = False) -> dict[str, Any]:
        """The upstream's discovery document (OIDC Discovery §4), cached; its ``issuer`` must be ours."""
        if not fresh and self._metadata is not None and time.monotonic() - self._metadata_at < DISCOVERY_TTL:
            return self._metadata
        url = f"{self.definition.issuer}/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery")
        if document.get("issuer", "").rstrip("/") != self.definition.issuer:
            raise UpstreamError(self._unavailable(), "IssuerMismatch")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(field), str):
                raise UpstreamError(self._unavailable(), "DiscoveryIncomplete")
        self._metadata, self._metadata_at = document, time.monotonic()
        return document

    async def check(self) -> None:
        """Read discovery now; :class:`UpstreamError` when the upstream does not answer properly."""
        await self.metadata(fresh=True)

    # The flow ---------------------------------------------------------------------------------------
    async def begin(self, interaction_id: str, login_hint: str | None) -> tuple[str, PendingLogin]:
        """The URL to send the browser to, and what to keep until it comes back."""
        metadata = await self.metadata()
        pending = PendingLogin(
            source=self.name,
            interaction_id=interaction_id,
            state=generate_token(32),
            nonce=generate_token(32),
            code_verifier=generate_token(64),
        )
        extra = {"login_hint": login_hint} if login_hint else {}
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=pending.state,
                code_verifier=pending.code_verifier,
                nonce=pending.nonce,
                **extra,
            )
        return str(url), pending

    async def finish(self, params: Mapping[str, str], pending: PendingLogin) -> User:
        """The person the upstream vouches for in this callback; :class:`UpstreamError` otherwise."""
        if not hmac.compare_digest(params.get("state", "").encode(), pending.state.encode()):
            raise UpstreamError(
                "The sign-in response does not match this sign-in. Start again.", "StateMismatch"
            )
        metadata = await self.metadata()
        issued_by = params.get("iss")
        if issued_by is not None and issued_by.rstrip("/") != self.definition.issuer:  # RFC 9207
            raise UpstreamError("The sign-in response came from another identity provider.", "IssuerMismatch")
        if "error" in params:
            logger.info("upstream %s refused the sign-in: %s", self.name, params.get("error", "")[:64])
            raise UpstreamError(
                f"{self.definition.display_name} did not sign you in ({params.get('error', '')[:64]}).",
                "UpstreamRefused",
            )
        code = params.get("code")
        if not code:
            raise UpstreamError("The sign-in response carries no authorization code.", "NoCode")
        token = await self._redeem(metadata, code, pending)
        claims = await self._id_token_claims(metadata, token, pending)
        if self.definition.use_userinfo and "userinfo_endpoint" in metadata:
            claims = {**claims, **await self._userinfo(metadata, token, claims["sub"])}
        return self._user(claims)

    # Steps ------------------------------------------------------------------------------------------
    async def _redeem(self, metadata: Mapping[str, Any], code: str, pending: PendingLogin) -> dict[str, Any]:
        from authlib.integrations.httpx_client import OAuthError  # see _client

        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    metadata["token_endpoint"], code=code, code_verifier=pending.code_verifier
                )
            except OAuthError as error:
                logger.info("upstream %s refused the code: %s", self.name, error.error)
                raise UpstreamError(
                    f"{self.definition.display_name} did not accept the sign-in. Start again.", "CodeRefused"
                ) from None
            except Exception as error:  # network errors, non-JSON answers: the upstream is unusable
                logger.warning("upstream %s token endpoint failed: %s", self.name, type(error).__name__)
                raise UpstreamError(self._unavailable(), "UpstreamUnavailable") from None
        if not isinstance(token.get("id_token"), str):
            raise UpstreamError("The identity provider sent no ID token.", "NoIDToken")
        return dict(token)

    async def _id_token_claims(
        self, metadata: Mapping[str, Any], token: Mapping[str, Any], pending: PendingLogin
    ) -> dict[str, Any]:
        raw = str(token["id_token"])
        try:
            decoded = jwt.decode(raw, await self._key_set(metadata), algorithms=_ALGORITHMS)
        except JoseError:
            # Perhaps signed with a key published since the JWKS was read: read it once more.
            try:
                decoded = jwt.decode(raw, await self._key_set(metadata, fresh=True), algorithms=_ALGORITHMS)
            except (JoseError, ValueError):
                raise UpstreamError(
                    "The identity provider's ID token is not validly signed.", "BadSignature"
                ) from None
        except ValueError:
            raise UpstreamError("The identity provider's ID token is malformed.", "BadIDToken") from None
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": self.definition.issuer},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": pending.nonce},
        )
        claims = dict(decoded.claims)
        try:
            registry.validate(claims)
        except JoseError as error:
            raise UpstreamError(
                "The identity provider's ID token is not valid for this sign-in.", _reason(error)
            ) from None
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or self.definition.client_id not in audiences:
            raise UpstreamError(
                "The identity provider's ID token was issued to another application.", "WrongAudience"
            )
        if len(audiences) > 1 and claims.get("azp") != self.definition.client_id:
            raise UpstreamError(
                "The identity provider's ID token was issued to another application.", "WrongAudience"
            )
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise UpstreamError("The identity provider's ID token names nobody.", "NoSubject")
        return claims

    async def _key_set(self, metadata: Mapping[str, Any], *, fresh: bool = False) -> KeySet:
        if self._keys is None or fresh:
            document = await self._get_json(str(metadata["jwks_uri"]), "JWKS")
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError):
                raise UpstreamError(self._unavailable(), "BadJWKS") from None
        return self._keys

    async def _userinfo(
        self, metadata: Mapping[str, Any], token: Mapping[str, Any], sub: str
    ) -> dict[str, Any]:
        async with self._client(token=dict(token)) as client:
            try:
                response = await client.get(str(metadata["userinfo_endpoint"]))
                info = response.json() if response.status_code == 200 else None
            except Exception as error:
                logger.warning("upstream %s userinfo failed: %s", self.name, type(error).__name__)
                info = None
        # OIDC Core §5.3.2: a userinfo answer for another subject must not be used.
        if not isinstance(info, dict) or info.get("sub") != sub:
            raise UpstreamError(self._unavailable(), "UserinfoFailed")
        return info

    def _user(self, claims: Mapping[str, Any]) -> User:
        d = self.definition
        email = claims.get(d.email_claim)
        email = email if isinstance(email, str) and email else None
        email_verified = claims.get("email_verified") is True
        raw_groups = claims.get(d.groups_claim, [])
        groups = (
            tuple(g for g in raw_groups if isinstance(g, str) and g) if isinstance(raw_groups, list) else ()
        )
        if d.allowed_domains:
            domain = email.rpartition("@")[2].lower() if email and email_verified else None
            if domain not in d.allowed_domains:
                raise UpstreamError(
                    "Your account's email domain is not allowed to sign in here.", "DomainNotAllowed"
                )
        if d.required_groups and not set(groups) & set(d.required_groups):
            raise UpstreamError("Your account is not in a group allowed to sign in here.", "GroupNotAllowed")
        username = claims.get(d.username_claim)
        name = claims.get(d.name_claim)
        return User(
            # iss and sub together identify the person (OIDC Core §2); the source's name keeps subjects apart.
            id=source_subject(d.name, f"{d.issuer}\x00{claims['sub']}"),
            username=username if isinstance(username, str) and username else email or str(claims["sub"]),
            name=name if isinstance(name, str) and name else None,
            email=email,
            email_verified=email_verified,
            groups=groups,
            **_standard_claims(claims),
        )

    def _client(self, token: dict[str, Any] | None = None) -> AsyncOAuth2Client:
        # Imported here: a provider without upstream sources never loads Authlib's HTTP client (with
        # its OAuth 1 modules, about 0.8 MiB of memory).
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        d = self.definition
        return AsyncOAuth2Client(
            client_id=d.client_id,
            client_secret=d.client_secret,
            scope=" ".join(d.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            token=token,
            timeout=HTTP_TIMEOUT,
        )

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        async with self._client() as client:
            try:
                response = await client.request("GET", url, withhold_token=True)
                document = response.json() if response.status_code == 200 else None
            except Exception as error:  # connection refused, timeout, TLS, not JSON
                logger.warning("upstream %s: %s at %s failed: %s", self.name, what, url, type(error).__name__)
                raise UpstreamError(self._unavailable(), "UpstreamUnavailable") from None
        if not isinstance(document, dict):
            logger.warning("upstream %s: %s at %s answered %s", self.name, what, url, response.status_code)
            raise UpstreamError(self._unavailable(), "UpstreamUnavailable")
        return document

    def _unavailable(self) -> str:
        return f"{self.definition.display_name} cannot be reached right now. Try again in a few minutes."


def _standard_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The upstream's standard profile, phone and address claims (OIDC Core §5.1), passed through as
    ``User`` fields; a value of the wrong type is left out."""
    profile = tuple(
        (claim, value) for claim in PROFILE_CLAIMS if (value := _typed(claim, claims.get(claim))) is not None
    )
    phone = _typed("phone_number", claims.get("phone_number"))
    raw_address = claims.get("address")
    address = tuple(
        (member, value)
        for member in ADDRESS_FIELDS
        if isinstance(raw_address, Mapping) and (value := _typed(member, raw_address.get(member)))
    )
    return {
        "profile": profile,
        "phone_number": phone,
        "phone_number_verified": phone is not None and claims.get("phone_number_verified") is True,
        "address": address,
    }


def _typed(claim: str, value: Any) -> Any:
    """``value`` if it has the type OIDC Core §5.1 gives ``claim`` (a number for ``updated_at``, a
    string for the others), else None."""
    if claim == "updated_at":
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
    return value if isinstance(value, str) and value else None


def _reason(error: JoseError) -> str:
    return "".join(part.capitalize() for part in str(getattr(error, "error", "InvalidClaim")).split("_"))
