"""Bounds on what a request body may cost: its size, counted while it streams, and its pace.

Every endpoint reads its body through this ASGI wrapper, whatever the framing: the body (chunked, or
with a ``Content-Length`` true or not) is counted as it arrives and refused once over the limit, so
nothing larger is ever buffered; a body that stops arriving for ``read_timeout`` seconds is refused (a
client declaring more than it sends cannot hold the connection). The refusals are raised as
``HTTPException`` inside the app, which answers 413 or 408 (never 500) and closes the connection, the
rest of the body unread; a refusal raised ahead of the app's routing (an ASGI lane reading the body
itself) is answered here the same way. (The back-channel endpoints also refuse a declared
``Content-Length`` over the limit before reading, with an OAuth error: ``endpoints.form``.)

A client that goes away in the middle of its body is not an error of ours: the app answers nobody and
logs one line at DEBUG, not a traceback (see ``client_went_away``).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

#: No form the provider takes comes close (a token request is under 4 KiB); anything larger is refused.
MAX_BODY = 64 * 1024
#: Seconds a body may pause between two of its parts.
READ_TIMEOUT = 10.0
#: The server closes the connection after the refusal instead of reading the rest of the body.
_CLOSE = {"Connection": "close"}


class BodyLimits:
    """ASGI middleware: refuse bodies over ``max_body`` bytes (413) or slower than ``read_timeout`` (408)."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY, read_timeout: float = READ_TIMEOUT) -> None:
        self.app = app
        self.max_body = max_body
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        complete = False

        async def bounded_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()  # the body is in: a wait for the disconnect is not bounded
            try:
                # A timer, not wait_for's extra task per receive: most bodies are there already.
                async with asyncio.timeout(self.read_timeout):
                    message = await receive()
            except TimeoutError:
                raise BodyRefused(408, "The request body did not arrive in time.", _CLOSE) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_body:
                    raise BodyRefused(413, "The request body is too large.", _CLOSE)
            return message

        try:
            await self.app(scope, bounded_receive, send)
        except BodyRefused as refusal:
            # Raised ahead of Starlette (whose handler answers every refusal raised inside it), so
            # before anything was sent: the answer Starlette's handler would give.
            response = PlainTextResponse(refusal.detail, refusal.status_code, refusal.headers)
            await response(scope, receive, send)


class BodyRefused(HTTPException):
    """A body over the size limit, or too slow: 413 or 408, and the connection closed."""


async def client_went_away(request: Request, exc: Exception) -> Response:
    """Starlette's handler for ``ClientDisconnect``: nobody to answer; one line, no traceback."""
    logger.debug(
        "Client went away before its request body was complete: %s %s", request.method, request.url.path
    )
    return Response(status_code=400)


#: The handler to register with Starlette, by exception class.
EXCEPTION_HANDLERS = {ClientDisconnect: client_went_away}
