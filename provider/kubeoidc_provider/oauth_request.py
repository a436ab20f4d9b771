"""Authlib's view of a Starlette request, built after the body has been read.

Authlib's grants are synchronous and read ``request.form`` / ``request.args``; Starlette reads bodies
asynchronously. The endpoint reads the form first, then hands Authlib this finished request.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            datalist[key].append(value)
        self._datalist = datalist
        self._data = {key: values[0] for key, values in datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class ProviderRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth 2.0 request whose parameters come from the query (GET) or the form body (POST)."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Iterable[tuple[str, str]],
        form: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._args = _Payload(query)
        self._form = _Payload(form)
        # RFC 6749 §3.2: token endpoint parameters travel in the body; authorize takes the query
        # (or, per OIDC Core §3.1.2.1, a POSTed form).
        self.payload = self._form if method == "POST" else self._args
        #: The event loop serving the request, when Authlib runs on a worker thread: the grants' storage
        #: hooks run their coroutines there (``state.wait_on``).
        self.loop: asyncio.AbstractEventLoop | None = None
        #: An authorization code the grant issued, and what it stands for: the endpoint stores it
        #: (a coroutine) before the redirect that carries it leaves.
        self.issued_code: tuple[str, Any] | None = None
        #: An opaque access token the grant issued (``tokens.IssuedAccessToken``): the token endpoint
        #: stores its claims before the response that carries it leaves.
        self.issued_access_token: Any = None
        #: A code spent on the loop before Authlib ran (``grants.EarlySpend``), and the registration of
        #: the client that authenticated for it.
        self.early_spend: Any = None
        self.client_registration: Any = None
        #: The client a verified client assertion authenticated, or why the assertion was refused
        #: (``client_assertions``: checked before Authlib runs).
        self.asserted_client_id: str | None = None
        self.assertion_error: str | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args.data

    @property
    def form(self) -> dict[str, str]:
        return self._form.data
