"""``GET``/``POST /userinfo`` (OIDC Core §5.3), protected by a bearer access token (RFC 6750).

Errors follow RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer`` (and ``error="invalid_token"`` when
a token was presented), 403 ``insufficient_scope`` without ``openid``.

The claims are those of the token's scopes and of a ``claims`` request's ``userinfo`` member (OIDC Core
§5.5). A client that registered ``userinfoSignedResponseAlg`` gets them as a signed JWT
(``application/jwt``, with ``iss`` and ``aud``, OIDC Core §5.3.2).
"""

from __future__ import annotations

import logging

from authlib.oauth2.base import invalid_error_characters
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints.form import FormError, read_form
from kubeoidc_provider.jsonutil import dump_json
from kubeoidc_provider.tokens import InvalidToken

logger = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def userinfo(request: Request) -> Response:
    return await answer(provider_of(request), await _bearer_token(request))


async def answer(provider: Provider, presented: str | None) -> Response:
    """The answer to a userinfo request that presented ``presented`` (None: no token)."""
    if presented is None:
        return _challenge(401, None, None)
    try:
        token = await provider.minter.check_access_token(presented)
    except InvalidToken as error:
        return _challenge(401, "invalid_token", str(error))
    client = provider.registry.get(token.client_id)
    if client is None or token.client_uid not in (None, client.uid):
        # The client was deleted (or is no longer served, or its ID now belongs to another OIDCClient):
        # what it was given ends with it.
        return _challenge(401, "invalid_token", "The token's client is no longer registered.")
    if "openid" not in token.scopes or not token.has_user:
        return _challenge(403, "insufficient_scope", "The access token lacks the 'openid' scope.")
    user = await provider.directory.find(token.subject)
    if user is None:
        return _challenge(401, "invalid_token", "The token's user no longer exists.")
    claims = user.claims(token.scopes, token.userinfo_claims)
    alg = client.userinfo_signed_response_alg
    if alg is None:
        return Response(dump_json(claims), media_type="application/json", headers=_NO_STORE)
    if not provider.keys.can_sign(alg):
        # The registry serves no client naming an algorithm the key set cannot sign with (it says so in
        # its log); this is the moment a key set without it replaced the one that had it.
        return _challenge(401, "invalid_token", "The token's client is no longer registered.")
    signed = provider.keys.sign({**claims, "iss": provider.settings.issuer, "aud": token.client_id}, alg=alg)
    return Response(signed, media_type="application/jwt", headers=_NO_STORE)


def bearer_of(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), or None."""
    scheme, _, value = authorization.partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


async def _bearer_token(request: Request) -> str | None:
    """RFC 6750 §2.1 header, or §2.2 form body on POST; never the query string (§2.3 is insecure)."""
    if (token := bearer_of(request.headers.get("authorization", ""))) is not None:
        return token
    if request.method == "POST":
        try:
            form = dict(await read_form(request))
        except FormError:
            return None
        return form.get("access_token") or None
    return None


def _challenge(status_code: int, error: str | None, description: str | None) -> Response:
    challenge = "Bearer"
    if error:
        challenge += f' error="{error}"'
        # The description may echo a presented token's header: into the header only when it is the
        # printable ASCII without quote or backslash that RFC 6750 §3 allows (else a 500, or a
        # broken challenge); the JSON body always carries it.
        if description and not invalid_error_characters(description):
            challenge += f', error_description="{description}"'
    headers = {"WWW-Authenticate": challenge, **_NO_STORE}
    body = dump_json({"error": error, "error_description": description}) if error else b""
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")
