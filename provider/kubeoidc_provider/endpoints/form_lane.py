"""Lanes: the hot back-channel requests answered at the ASGI layer, ahead of routing and Authlib.

A machine client's token request and a resource server's introspection are most of a provider's load,
and each layer they cross (routing, middleware, Starlette's request and response objects, Authlib's
request and its generic endpoint code) costs about as much as an ES256 signature. A lane answers the
common, well-formed shape of one such request: a form ``POST`` to its path, a body in one part, HTTP
Basic credentials of a confidential ``client_secret_basic`` client, and an answer Authlib would give
with the same body and headers (Authlib's JSON headers, and the CORS middleware's).

Anything else goes on to the app unchanged, with the body already read given back first: every refusal
keeps Authlib's exact error, and a lane only ever answers 200. Lanes sit inside ``BodyLimits``, so the
body they read is bounded in size and pace like any other.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from authlib.consts import default_json_headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubeoidc_provider.context import Provider
from kubeoidc_provider.cors import routed_response_headers

_FORM_MEDIA_TYPE = b"application/x-www-form-urlencoded"
#: Authlib's JSON response headers.
_HEADERS = [(name.lower().encode(), value.encode()) for name, value in default_json_headers]


class FormLane:
    """ASGI middleware: requests to ``path`` whose :meth:`answer` says True are answered by the lane;
    every other request goes to ``app``."""

    def __init__(self, app: ASGIApp, provider: Provider, path: str) -> None:
        self.app = app
        self.provider = provider
        self.path = f"{provider.settings.issuer_path}{path}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        authorization, origin = _read_headers(scope)
        if authorization is None:
            await self.app(scope, receive, send)
            return
        message = await receive()
        form = _one_part_form(message)
        if form is None or not await self.answer(authorization, form, Responder(send, origin), scope):
            await self.app(scope, _given_back(message, receive), send)

    async def answer(
        self, authorization: str, form: dict[str, str], respond: Responder, scope: Scope
    ) -> bool:
        """Answer through ``respond`` and say True, or say False (having sent nothing) to let the app
        answer; what the app should know of the attempt goes into its ASGI ``scope``. ``form`` holds
        each parameter once (a repeated one never reaches a lane)."""
        raise NotImplementedError


class Responder:
    """Sends a lane's JSON answer, with the headers Authlib's path would have."""

    __slots__ = ("_origin", "_send")

    def __init__(self, send: Send, origin: bool) -> None:
        self._send = send
        self._origin = origin

    async def json(self, content: bytes) -> None:
        headers = [
            *_HEADERS,
            (b"content-length", str(len(content)).encode()),
            *routed_response_headers(self._origin),
        ]
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})
        await self._send({"type": "http.response.body", "body": content})


def _read_headers(scope: Scope) -> tuple[str | None, bool]:
    """The ``Authorization`` header of a form POST carrying HTTP Basic credentials (else None), and
    whether the request has an ``Origin`` (a browser's cross-origin call, answered with CORS)."""
    authorization: str | None = None
    form = origin = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is not None:
                return None, False  # twice: for Authlib to refuse
            authorization = value.decode("latin-1")
        elif name == b"content-type":
            form = value.partition(b";")[0].strip().lower() == _FORM_MEDIA_TYPE
        elif name == b"origin":
            origin = True
    if not form or authorization is None or authorization[:6].lower() != "basic ":
        return None, False
    return authorization, origin


def _one_part_form(message: Message) -> dict[str, str] | None:
    """The form of a body that came in one message, each parameter once; None for anything else."""
    if message["type"] != "http.request" or message.get("more_body", False):
        return None
    try:
        pairs = parse_qsl(message.get("body", b"").decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    form = dict(pairs)
    return form if len(form) == len(pairs) else None


def _given_back(first: Message, receive: Receive) -> Receive:
    """``receive`` with the message already read handed out again first."""
    pending: Message | None = first

    async def replay() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replay
