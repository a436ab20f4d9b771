"""OAuth 2.0 Form Post Response Mode: the authorization response as a form the browser posts at once.

The parameters go in the body of a POST to the redirect URI instead of its query, so the code never
lands in the browser's history or a server's access log. The page submits itself with one inline
script allowed by a per-response CSP nonce (nothing else may run), shows a button for browsers without
scripts, and, as every page, cannot be framed or cached.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from starlette.responses import HTMLResponse

from kubeoidc_provider.context import Provider
from kubeoidc_provider.pages import PAGE_HEADERS


def form_post_response(provider: Provider, location: str) -> HTMLResponse:
    """The page that posts ``location``'s query parameters to ``location`` without its query."""
    parts = urlsplit(location)
    action = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    fields = parse_qsl(parts.query, keep_blank_values=True)
    nonce = secrets.token_urlsafe(16)
    headers = dict(PAGE_HEADERS)
    headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    body = provider.pages.html("form_post.html", action=action, fields=fields, nonce=nonce)
    return HTMLResponse(body, headers=headers)
