"""Server-rendered HTML pages (login, consent, logout, errors) and the headers every page carries.

Templates are compiled once at start. Pages forbid framing (clickjacking), are never cached, and load
nothing but the provider's own stylesheet.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # No form-action: browsers apply it to the redirect that follows a form post, and ours lead to the
    # client's registered redirect URI.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class Pages:
    """Renders the provider's templates with the headers every page needs."""

    def __init__(self, *, static_prefix: str) -> None:
        self.environment = Environment(
            loader=PackageLoader("kubeoidc_provider", "templates"),
            autoescape=select_autoescape(default=True),
            auto_reload=False,
        )
        self.environment.globals["stylesheet"] = f"{static_prefix}/static/kubeoidc.css"
        self._templates = {
            name: self.environment.get_template(name)
            for name in (
                "login.html",
                "consent.html",
                "error.html",
                "logout.html",
                "logged_out.html",
                "device.html",
                "device_done.html",
            )
        }

    def render(
        self, name: str, status_code: int = 200, *, policy: str | None = None, **context: Any
    ) -> HTMLResponse:
        """``policy``: a Content-Security-Policy of the page's own instead of the one every page has
        (still with ``frame-ancestors 'none'``: see ``PAGE_HEADERS``)."""
        body = self._templates[name].render(**context)
        headers = PAGE_HEADERS if policy is None else {**PAGE_HEADERS, "Content-Security-Policy": policy}
        return HTMLResponse(body, status_code=status_code, headers=headers)

    def error(self, status_code: int, title: str, message: str, error: str | None = None) -> HTMLResponse:
        """An error shown to the user instead of a redirect (RFC 6749 §4.1.2.1: no trusted redirect URI)."""
        return self.render("error.html", status_code, title=title, message=message, error=error)
