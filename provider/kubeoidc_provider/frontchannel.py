"""OpenID Connect Front-Channel Logout 1.0: the signed-out page frames each client's logout page.

When a session ends at ``/logout``, every client it signed in to that registered a
``frontchannelLogoutURI`` gets that page loaded in an invisible iframe of the signed-out page (§2), so
that the application's own cookies, sent with the framed request, tell it which browser to sign out.
A client that registered ``frontchannelLogoutSessionRequired`` gets ``iss`` and ``sid`` in the query
(§2), and none is framed for a session that has no ``sid``.

The clients of a session are the ones back-channel logout tells (``State.end_session_clients``, taken
once): the two channels share that bookkeeping. Only ``/logout`` has a browser to frame pages in; a
session that expires, or that another user's sign-in replaces, is announced on the back channel alone.

The page's Content-Security-Policy allows frames from exactly these clients' origins (``frame-src``),
and, like every page of the provider, refuses to be framed itself (``frame-ancestors 'none'``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.state import SessionClients
from kubeoidc_provider.urls import add_query

#: An origin safe to write into a CSP source list: scheme, host (a name, an IPv4 or an IPv6 literal)
#: and port; nothing that could end the directive or add another.
_ORIGIN: Final = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


@dataclass(frozen=True, slots=True)
class LogoutFrame:
    """One client's logout page, as the signed-out page frames it."""

    client_id: str
    src: str
    origin: str


def logout_frames(
    registry: ClientRegistry, issuer: str, clients: SessionClients | None, sid: str | None
) -> list[LogoutFrame]:
    """The frames to put on the signed-out page of the session ``sid``, one per client that takes them."""
    frames: list[LogoutFrame] = []
    for client_id in clients.client_ids if clients is not None else ():
        client = registry.get(client_id)
        if client is None or not client.frontchannel_logout_uri:
            continue
        src = client.frontchannel_logout_uri
        if client.frontchannel_logout_session_required:
            if not sid:
                continue
            src = add_query(src, {"iss": issuer, "sid": sid})
        origin = _origin_of(src)
        if origin is not None:
            frames.append(LogoutFrame(client_id, src, origin))
    return frames


def frame_sources(frames: Iterable[LogoutFrame]) -> str:
    """The ``frame-src`` source list allowing exactly the frames' origins (``'none'`` without any)."""
    origins = sorted({frame.origin for frame in frames})
    return " ".join(origins) if origins else "'none'"


def _origin_of(uri: str) -> str | None:
    """``scheme://host[:port]`` of a URI the CRD accepted, or None if it would not be a safe CSP source."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if _ORIGIN.fullmatch(origin) else None
