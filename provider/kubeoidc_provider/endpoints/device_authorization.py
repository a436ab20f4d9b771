"""``POST /device_authorization``: the Device Authorization Endpoint (RFC 8628 §3.1, §3.2).

A device (a terminal, a CLI on a server) asks for a pair of codes; the user enters the user code on
the verification page (``/device``) from any browser, signs in and consents, while the device polls the
token endpoint. The client authenticates as at the token endpoint (public clients by ``client_id``
alone) and must have the device grant in its ``spec.grantTypes``.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error, UnauthorizedClientError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kubeoidc_contract import DEVICE_CODE_GRANT_TYPE
from kubeoidc_provider.context import provider_of
from kubeoidc_provider.endpoints.form import read_oauth_request
from kubeoidc_provider.oauth_client import AUTH_METHODS
from kubeoidc_provider.urls import add_query

PATH = "/device_authorization"
#: Where people enter the user code (RFC 8628 §3.2 ``verification_uri``).
VERIFICATION_PATH = "/device"


async def device_authorization(request: Request) -> Response:
    provider = provider_of(request)
    oauth_request = await read_oauth_request(provider, request, PATH)
    if isinstance(oauth_request, Response):
        return oauth_request
    server = provider.server
    try:
        client = server.authenticate_client(oauth_request, list(AUTH_METHODS), endpoint="token")
        if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
            raise UnauthorizedClientError(
                description="The client may not use the device grant: see its spec.grantTypes."
            )
        # The scopes the client may have; others are left out (OAuthClient.get_allowed_scope).
        scope = client.get_allowed_scope(oauth_request.payload.scope)
    except OAuth2Error as error:
        response: Response = server.handle_error_response(oauth_request, error)
        return response
    settings = provider.settings
    device_code, user_code = await server.devices.start(
        client.get_client_id(),
        scope,
        settings.device_code_ttl,
        settings.device_poll_interval,
        client_uid=client.client.uid,
    )
    verification_uri = provider.url(VERIFICATION_PATH)
    return JSONResponse(
        {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": add_query(verification_uri, {"user_code": user_code}),
            "expires_in": settings.device_code_ttl,
            "interval": settings.device_poll_interval,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
