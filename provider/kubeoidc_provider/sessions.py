"""The browser session: an opaque cookie naming a server-side record, and its CSRF token.

The cookie is ``HttpOnly`` and ``SameSite=Lax``, ``Secure`` unless the issuer is on loopback, and
scoped to the issuer's path. Where it is ``Secure`` and its path is ``/``, its name carries the
``__Host-`` prefix, so a sibling subdomain cannot plant one (RFC 6265bis §4.1.3.2). Logging in issues
a new session id (no session fixation).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.state import Session, State, new_token, token_hash

COOKIE_NAME = "kubeoidc_session"
#: Browsers accept a cookie so named only if Secure, for path /, from the host itself (no Domain).
HOST_PREFIX = "__Host-"


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A session as loaded for one request; ``created`` means the cookie must be (re)sent."""

    id: str
    data: Session
    created: bool = False

    @property
    def hash(self) -> str:
        return token_hash(self.id)


class SessionManager:
    """Loads, creates and ends browser sessions."""

    def __init__(self, settings: ProviderSettings, state: State) -> None:
        self.settings = settings
        self.state = state

    async def load(self, request: Request) -> BrowserSession | None:
        session_id = request.cookies.get(self.cookie_name)
        if not session_id:
            return None
        data = await self.state.get_session(session_id)
        return BrowserSession(session_id, data) if data is not None else None

    async def start(self, data: Session) -> BrowserSession:
        session_id = new_token()
        await self.state.save_session(session_id, data, self.settings.session_ttl)
        return BrowserSession(session_id, data, created=True)

    async def end(self, session: BrowserSession, response: Response) -> None:
        await self.state.delete_session(session.id)
        response.delete_cookie(
            self.cookie_name, path=self._path, secure=self.settings.secure_cookies, httponly=True
        )

    def set_cookie(self, session: BrowserSession, response: Response) -> None:
        if session.created:
            response.set_cookie(
                self.cookie_name,
                session.id,
                max_age=self.settings.session_ttl,
                path=self._path,
                secure=self.settings.secure_cookies,
                httponly=True,
                samesite="lax",
            )

    @staticmethod
    def check_csrf(session: BrowserSession | None, submitted: str | None) -> bool:
        if session is None or not submitted:
            return False
        return hmac.compare_digest(session.data.csrf_token.encode(), submitted.encode())

    @property
    def cookie_name(self) -> str:
        """``__Host-kubeoidc_session`` where the prefix's rules hold, else ``kubeoidc_session``."""
        if self.settings.secure_cookies and self._path == "/":
            return HOST_PREFIX + COOKIE_NAME
        return COOKIE_NAME

    @property
    def _path(self) -> str:
        return self.settings.issuer_path or "/"
