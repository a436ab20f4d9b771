"""The Device Authorization Grant at the token endpoint (RFC 8628 §3.4, §3.5), as an Authlib grant.

Authlib's grant authenticates the client and checks its grant type; the hooks here read the request
from the state store and answer each poll: ``authorization_pending`` until the user decides,
``slow_down`` when polled faster than the interval, ``access_denied``, ``expired_token``, and tokens
exactly once after approval (a second poll with the same code is ``invalid_grant``).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc8628 import (
    AuthorizationPendingError,
    ExpiredTokenError,
    SlowDownError,
)
from authlib.oauth2.rfc8628 import DeviceCodeGrant as AuthlibDeviceCodeGrant

from kubeoidc_provider.device_codes import APPROVED, DENIED, DeviceCodes, DeviceRequest
from kubeoidc_provider.grants import EndUser
from kubeoidc_provider.oauth_client import AUTH_METHODS
from kubeoidc_provider.state import wait_on
from kubeoidc_provider.users import UserDirectory

if TYPE_CHECKING:
    from kubeoidc_provider.oauth_request import ProviderRequest

_T = TypeVar("_T")


def wait_for(request: ProviderRequest, coroutine: Coroutine[Any, Any, _T]) -> _T:
    """A state coroutine's result, on the token endpoint's worker thread (see ``state.wait_on``)."""
    assert request.loop is not None, "the token endpoint sets request.loop"
    return wait_on(request.loop, coroutine)


class DeviceServer(Protocol):
    """What the grant uses of the server that registers it."""

    devices: DeviceCodes
    users: UserDirectory


class _Credential:
    """Authlib's view of a device request (``DeviceCredentialMixin``)."""

    __slots__ = ("key", "request")

    def __init__(self, key: str, request: DeviceRequest) -> None:
        self.key = key
        self.request = request

    def get_client_id(self) -> str:
        return self.request.client_id

    def get_scope(self) -> str:
        return self.request.scope

    def is_expired(self) -> bool:
        return self.request.expired


class DeviceCodeGrant(AuthlibDeviceCodeGrant):  # type: ignore[misc]
    """RFC 8628 §3.4: ``grant_type=urn:ietf:params:oauth:grant-type:device_code``."""

    # Public clients (a CLI) use "none"; confidential ones their registered method (OAuthClient).
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def _server(self) -> DeviceServer:
        server: DeviceServer = self.server
        return server

    def validate_token_request(self) -> None:
        if not self.request.payload.data.get("device_code"):
            raise InvalidRequestError("Missing 'device_code' parameter.")
        super().validate_token_request()

    def authenticate_token_endpoint_client(self) -> Any:
        # Authlib sets request.client only after the device code is looked up; the lookup needs it.
        client = super().authenticate_token_endpoint_client()
        self.request.client = client
        return client

    def query_device_credential(self, device_code: str) -> _Credential:
        found = wait_for(self.request, self._server().devices.find(device_code))
        if found is None or found[1].client_uid != self.request.client.client.uid:
            # Another OIDCClient's code, even under the same (re-pinned) client ID, is unknown here.
            raise InvalidGrantError("The device code is unknown.")
        return _Credential(*found)

    def validate_device_credential(self, credential: _Credential) -> EndUser:
        devices = self._server().devices
        request = credential.request
        if credential.is_expired():
            raise ExpiredTokenError("The device code has expired: start again.")
        if request.status == DENIED:
            raise AccessDeniedError("The user denied the request.")
        if request.status == APPROVED:
            if not wait_for(self.request, devices.spend(credential.key)):
                raise InvalidGrantError("The device code was already used.")
            assert request.user_id is not None
            assert request.auth_time is not None
            user = self._server().users.get(request.user_id)
            if user is None:
                raise AccessDeniedError("The user no longer exists.")
            return EndUser(user, request.auth_time, request.grant_id or "")
        if wait_for(self.request, devices.too_fast(credential.key, request)):
            raise SlowDownError("Polling too fast: wait 5 seconds more between requests.")
        raise AuthorizationPendingError("The user has not finished signing in yet.")
