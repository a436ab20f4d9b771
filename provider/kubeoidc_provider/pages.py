"""Server-rendered HTML pages (login, consent, logout, errors) and the headers every page carries.

Each template file (``templates/*.html``) holds the parts of one page, each opened by a line
``<!-- part NAME -->``, with ``$name`` placeholders (``string.Template``); what a page shows or repeats
is decided here, in the page's own function. Every value put into a placeholder is HTML-escaped unless
it is a part rendered here (:class:`Html`): a client's display name, a URL or an error text can never
become markup. The templates are read once at start. (A template engine cost the provider about 2 MiB
of memory for ten small pages.)

Pages forbid framing (clickjacking), are never cached, and load nothing but the provider's own
stylesheet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from string import Template
from typing import Any, Protocol

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

_PART = re.compile(r"^<!-- part (\w+) -->\n", re.MULTILINE)
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})


class Html(str):
    """Markup rendered here from a template: put into another template as it is, never escaped again."""

    __slots__ = ()


#: What a part the page does not show is replaced with.
NOTHING = Html("")


def escape(value: object) -> str:
    """``value`` as text in HTML, in an element or in a quoted attribute."""
    return str(value).translate(_ESCAPES)


class PageTemplate:
    """The parts of one template file."""

    def __init__(self, text: str) -> None:
        pieces = _PART.split(text)
        if pieces[0].strip():
            raise ValueError("a page template starts with its first <!-- part NAME --> line")
        self._parts = {
            name: Template(body.removesuffix("\n"))
            for name, body in zip(pieces[1::2], pieces[2::2], strict=True)
        }

    def __call__(self, part: str, **values: object) -> Html:
        """The part, each value escaped unless it is :class:`Html`; a value missing is an error."""
        return Html(
            self._parts[part].substitute(
                {name: value if isinstance(value, Html) else escape(value) for name, value in values.items()}
            )
        )

    def each(self, part: str, rows: Iterable[Mapping[str, object]], separator: str = "\n  ") -> Html:
        """The part once per row."""
        return Html(separator.join(self(part, **row) for row in rows))


# -- the pages: (templates, context) -> (title, content) -------------------------------------------


class ShownClient(Protocol):
    """What the login, consent and logout pages show of the application asking (``registration.Client``)."""

    @property
    def name(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def url(self) -> str: ...


Templates = Mapping[str, PageTemplate]
Page = Callable[[Templates, Mapping[str, Any]], tuple[Html, Html]]


def _client(templates: Templates, client: ShownClient) -> Html:
    """The application asking, as the login, consent and logout pages show it."""
    part = templates["client.html"]
    return part(
        "content",
        name=_client_name(client),
        description=part("description", description=client.description) if client.description else NOTHING,
        url=part("url", url=client.url) if client.url else NOTHING,
    )


def _client_name(client: ShownClient) -> str:
    return client.display_name or client.name


def _login(templates: Templates, context: Mapping[str, Any]) -> tuple[Html, Html]:
    page = templates["login.html"]
    error, username, upstreams = context.get("error"), context.get("username"), context.get("upstreams") or ()
    password_form = page(
        "password_form",
        separator=page("separator") if upstreams else NOTHING,
        action=context["action"],
        interaction_id=context["interaction_id"],
        csrf_token=context["csrf_token"],
        username=username or "",
        described_by=Html(' aria-describedby="login-error"') if error else NOTHING,
        username_focus=NOTHING if username else Html(" autofocus"),
        password_focus=Html(" autofocus") if username else NOTHING,
    )
    upstream_forms = page.each(
        "upstream",
        (
            {
                "action": context["upstream_action"],
                "interaction_id": context["interaction_id"],
                "csrf_token": context["csrf_token"],
                "source_name": name,
                "source_display_name": display_name,
            }
            for name, display_name in upstreams
        ),
    )
    content = page(
        "content",
        client=_client(templates, context["client"]),
        error=page("error", error=error) if error else NOTHING,
        upstreams=upstream_forms,
        password_form=password_form if context.get("password_form") else NOTHING,
    )
    return page("title", client_name=_client_name(context["client"])), content


def _consent(templates: Templates, context: Mapping[str, Any]) -> tuple[Html, Html]:
    page = templates["consent.html"]
    scopes = page.each(
        "scope", ({"scope": scope, "description": text} for scope, text in context["scopes"]), separator=""
    )
    content = page(
        "content",
        client=_client(templates, context["client"]),
        scopes=scopes,
        action=context["action"],
        interaction_id=context["interaction_id"],
        csrf_token=context["csrf_token"],
    )
    return page("title", client_name=_client_name(context["client"])), content


def _error(templates: Templates, context: Mapping[str, Any]) -> tuple[Html, Html]:
    page = templates["error.html"]
    error = context.get("error")
    content = page(
        "content",
        title=context["title"],
        message=context["message"],
        error=page("error", error=error) if error else NOTHING,
    )
    return page("title", title=context["title"]), content


def _logout(templates: Templates, context: Mapping[str, Any]) -> tuple[Html, Html]:
    page = templates["logout.html"]
    client = context.get("client")
    fields = page.each("field", ({"name": name, "value": value} for name, value in context["fields"]))
    content = page(
        "content",
        client=page("client", client=_client(templates, client)) if client else NOTHING,
        action=context["action"],
        csrf_token=context["csrf_token"],
        fields=fields,
    )
    return page("title"), content


def _logged_out(templates: Templates, context: Mapping[str, Any]) -> tuple[Html, Html]:
    page = templates["logged_out.html"]
    frames = page.each("frame", ({"src": frame.src} for frame in context.get("frames") or ()))
    follow = context.get("next")
    after = (
        page("next", next=follow, nonce=context["nonce"], wait=context["wait"]) if follow else page("close")
    )
    return page("title"), page("content", frames=frames, next=after)


def _device(templates: Templates, context: Mapping[str, Any]) -> tuple[Html, Html]:
    page = templates["device.html"]
    error = context.get("error")
    content = page(
        "content",
        error=page("error", error=error) if error else NOTHING,
        action=context["action"],
        csrf_token=context["csrf_token"],
        code_length=context["code_length"],
        user_code=context["user_code"],
        described_by=Html(' aria-describedby="device-error"') if error else NOTHING,
    )
    return page("title"), content


def _device_done(templates: Templates, context: Mapping[str, Any]) -> tuple[Html, Html]:
    page = templates["device_done.html"]
    outcome = "approved" if context["approved"] else "denied"
    return page(f"{outcome}_title"), page(outcome)


def _form_post(templates: Templates, context: Mapping[str, Any]) -> tuple[Html, Html]:
    page = templates["form_post.html"]
    fields = page.each("field", ({"name": name, "value": value} for name, value in context["fields"]))
    return page("title"), page("content", action=context["action"], fields=fields, nonce=context["nonce"])


PAGES: dict[str, Page] = {
    "login.html": _login,
    "consent.html": _consent,
    "error.html": _error,
    "logout.html": _logout,
    "logged_out.html": _logged_out,
    "device.html": _device,
    "device_done.html": _device_done,
    "form_post.html": _form_post,
}


class Pages:
    """Renders the provider's pages with the headers every page needs."""

    def __init__(self, *, static_prefix: str) -> None:
        # Beside this module: the package is installed as files, and ``importlib.resources`` would load
        # about half a MiB of modules (``tempfile``, ``zipfile``, ...) that the provider has no other use for.
        folder = Path(__file__).parent / "templates"
        self._base = Template((folder / "base.html").read_text(encoding="utf-8").removesuffix("\n"))
        self._templates = {
            name: PageTemplate((folder / name).read_text(encoding="utf-8"))
            for name in (*PAGES, "client.html")
        }
        self._stylesheet = escape(f"{static_prefix}/static/kubeoidc.css")

    def html(self, name: str, **context: Any) -> str:
        """The page ``name`` (a file of ``templates/``) as a document."""
        title, content = PAGES[name](self._templates, context)
        return self._base.substitute(title=title, stylesheet=self._stylesheet, content=content)

    def render(
        self, name: str, status_code: int = 200, *, policy: str | None = None, **context: Any
    ) -> HTMLResponse:
        """``policy``: a Content-Security-Policy of the page's own instead of the one every page has
        (still with ``frame-ancestors 'none'``: see ``PAGE_HEADERS``)."""
        headers = PAGE_HEADERS if policy is None else {**PAGE_HEADERS, "Content-Security-Policy": policy}
        return HTMLResponse(self.html(name, **context), status_code=status_code, headers=headers)

    def error(self, status_code: int, title: str, message: str, error: str | None = None) -> HTMLResponse:
        """An error shown to the user instead of a redirect (RFC 6749 §4.1.2.1: no trusted redirect URI)."""
        return self.render("error.html", status_code, title=title, message=message, error=error)
