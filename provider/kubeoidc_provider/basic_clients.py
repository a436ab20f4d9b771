"""The client that HTTP Basic credentials authenticate (RFC 6749 §2.3.1), checked as Authlib's
``client_secret_basic`` checks them, for the paths that answer before Authlib runs.

Only a positive answer counts: None means "not this way", and the request then goes to Authlib, which
authenticates it by whatever method applies, or refuses it with the exact RFC 6749 §5.2 error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from authlib.oauth2.rfc6749.util import extract_basic_authorization

from kubeoidc_provider.registration import Client
from kubeoidc_provider.registry import ClientRegistry

_METHOD = "client_secret_basic"
#: Body parameters that authenticate a client: beside Basic credentials, two methods (Authlib refuses).
_BODY_CREDENTIALS = ("client_secret", "client_assertion")


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The client ID and secret of an ``Authorization`` header, read as Authlib reads them; None
    without both (or when they are not base64 of UTF-8)."""
    if authorization is None:
        return None
    try:
        client_id, secret = extract_basic_authorization({"Authorization": authorization})
    except ValueError:
        return None
    return (client_id, secret) if client_id and secret else None


def basic_client(
    registry: ClientRegistry, authorization: str | None, form: Mapping[str, str]
) -> Client | None:
    """The confidential ``client_secret_basic`` client whose secret the header carries, with no other
    credentials in the body ``form``; None for any other request."""
    if any(name in form for name in _BODY_CREDENTIALS):
        return None
    credentials = basic_credentials(authorization)
    if credentials is None or form.get("client_id", credentials[0]) != credentials[0]:
        return None
    client = registry.get(credentials[0])
    if (
        client is None
        or client.public
        or client.service_accounts
        or client.token_endpoint_auth_method != _METHOD
    ):
        return None
    return client if client.check_secret(credentials[1], time.time()) else None
