"""Reading ``application/x-www-form-urlencoded`` bodies: the back-channel endpoints' and the pages'.

RFC 6749 §3.2 and RFC 7009/7662 take only that media type, and forbid repeating a parameter. Parsing
the bytes directly is faster than Starlette's general form parser and bounds the body's size. The
pages' forms (authorize, login, consent, logout) go through Starlette's parser, bounded here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import InvalidRequestError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.body_limits import MAX_BODY
from kubeoidc_provider.context import Provider
from kubeoidc_provider.oauth_request import ProviderRequest

#: The most fields a page's form may have: the largest (consent) has a handful, plus one per scope.
MAX_PAGE_FIELDS = 128
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class FormError(Exception):
    """The body is not a well-formed form: ``invalid_request`` (RFC 6749 §5.2)."""


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_page_form(request: Request) -> FormData:
    """A page's POSTed form: that media type only (else 415), a bounded number of fields, no files.

    Without a Content-Type the form is empty (a body-less POST). The body's size is bounded as it
    streams (``body_limits``)."""
    if "content-type" in request.headers and _media_type(request) != _FORM_MEDIA_TYPE:
        raise HTTPException(415, f"The form must be {_FORM_MEDIA_TYPE}.")
    return await request.form(max_files=0, max_fields=MAX_PAGE_FIELDS, max_part_size=MAX_BODY)


def repeated_parameter(pairs: list[tuple[str, str]]) -> str | None:
    """The first parameter that appears twice, or None: refused everywhere (RFC 6749 §3.1, §3.2), as
    a validator and the code that uses the value could otherwise read different copies."""
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            return name
        seen.add(name)
    return None


async def read_form(request: Request) -> list[tuple[str, str]]:
    if _media_type(request) != _FORM_MEDIA_TYPE:
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
    # RFC 8707 §2: the one parameter a token request may repeat.
    if repeated_parameter([pair for pair in pairs if pair[0] != "resource"]) is not None:
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
