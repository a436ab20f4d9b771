"""The OpenID Connect authorization parameters that Authlib's code grant leaves to the provider.

- ``request`` and ``request_uri`` (OIDC Core §6): not supported, and said so in discovery; refused with
  ``request_not_supported`` / ``request_uri_not_supported`` at the redirect URI (§6.1, §6.2), never
  silently ignored, since a client that signs its request expects it to count.
- ``claims`` (§5.5): parsed into the claim names asked of the ID token and of userinfo.
- ``response_mode``: ``query`` (the default for code) or ``form_post`` (OAuth 2.0 Form Post Response
  Mode); ``fragment`` would put the code where scripts and history see it, so it is refused.
- ``id_token_hint`` (§3.1.2.1): an ID token of ours, expired or not; its ``sub`` is the user the client
  expects. A session of anyone else needs a login (and with ``prompt=none``: ``login_required``).
- ``display``, ``ui_locales``, ``claims_locales``, ``login_hint`` and ``acr_values`` are accepted: the
  pages have one layout and one language, a login hint fills in the username, and there is one
  authentication context (reported as ``acr``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError

from kubeoidc_provider.claims_request import ClaimsRequest, ClaimsRequestError, parse_claims_request
from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import InvalidTokenError
from kubeoidc_provider.metadata import CLAIMS_SUPPORTED

FORM_POST = "form_post"
#: The response modes a code response may use (``response_modes_supported``).
RESPONSE_MODES = ("query", FORM_POST)
#: Prompts that make the user sign in again (there is no account chooser: the login page is one).
LOGIN_PROMPTS = frozenset({"login", "select_account"})
#: The ``display`` values of OIDC Core §3.1.2.1; the pages suit every one of them.
DISPLAY_VALUES = ("page", "popup", "touch", "wap")


@dataclass(frozen=True, slots=True)
class Checked:
    """What the checked parameters ask for."""

    claims: ClaimsRequest
    #: The ``sub`` of a valid ``id_token_hint``, or None without one.
    hinted_subject: str | None


def check(provider: Provider, data: Mapping[str, str]) -> Checked:
    """The request's OpenID Connect parameters, or the OAuth error to send to the redirect URI."""
    if "request" in data:
        raise RequestNotSupportedError()
    if "request_uri" in data:
        raise RequestURINotSupportedError()
    if data.get("response_mode", "query") not in RESPONSE_MODES:
        raise InvalidRequestError(f"'response_mode' must be one of: {', '.join(RESPONSE_MODES)}.")
    if data.get("display", "page") not in DISPLAY_VALUES:
        raise InvalidRequestError(f"'display' must be one of: {', '.join(DISPLAY_VALUES)}.")
    try:
        claims = parse_claims_request(data.get("claims"), frozenset(CLAIMS_SUPPORTED))
    except ClaimsRequestError as error:
        raise InvalidRequestError(str(error)) from None
    return Checked(claims, _hinted_subject(provider, data.get("id_token_hint")))


def _hinted_subject(provider: Provider, hint: str | None) -> str | None:
    if not hint:
        return None
    try:
        # Not checked for expiry (§3.1.2.1 allows an expired one): it only tells whom the client expects.
        claims = provider.keys.verify(hint, typ="JWT")
    except InvalidTokenError:
        claims = None
    if claims is None or claims.get("iss") != provider.settings.issuer or not claims.get("sub"):
        raise InvalidRequestError("The 'id_token_hint' is not an ID token issued by this provider.")
    return str(claims["sub"])
