"""Reading ``application/x-www-form-urlencoded`` bodies for the back-channel endpoints.

RFC 6749 §3.2 and RFC 7009/7662 take only that media type, and forbid repeating a parameter. Parsing
the bytes directly is faster than Starlette's general form parser and bounds the body's size.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import InvalidRequestError
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import Provider
from kubeoidc_provider.oauth_request import ProviderRequest

#: No legitimate token request comes close; anything larger is refused unread.
MAX_BODY = 64 * 1024


class FormError(Exception):
    """The body is not a well-formed form: ``invalid_request`` (RFC 6749 §5.2)."""


async def read_form(request: Request) -> list[tuple[str, str]]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise FormError("The request body must be application/x-www-form-urlencoded.")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise FormError("The request body is too large.")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise FormError("The request body is too large.")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as error:
        raise FormError("The request body is not valid form data.") from error
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        # ASCII only: an OAuth error description may not carry "§" (RFC 6749 §5.2), and Authlib
        # refuses to build one that does.
        raise FormError("A parameter is repeated; each may appear once (RFC 6749 section 3.2).")
    return pairs


async def read_oauth_request(provider: Provider, request: Request, path: str) -> ProviderRequest | Response:
    """The Authlib request for a back-channel endpoint, or the ``invalid_request`` response to send."""
    uri = provider.url(path)
    try:
        form = await read_form(request)
    except FormError as error:
        empty = ProviderRequest("POST", uri, request.headers, ())
        response: Response = provider.server.handle_error_response(empty, InvalidRequestError(str(error)))
        return response
    oauth_request = ProviderRequest("POST", uri, request.headers, (), form)
    await provider.assertions.check(oauth_request)
    return oauth_request
