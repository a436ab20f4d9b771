"""The provider's own small client of the Kubernetes API: get a JSON document, open a watch.

All the provider ever asks of the API is to read: one object or one page of a list (``get_json``) and
the events of a watch (``watch``), objects staying the API's JSON (never client models). An answer other
than 2xx raises :class:`ApiError` with the HTTP status; so does a watch's ``ERROR`` event (its status:
410 when the resourceVersion has expired). Transport failures are ``httpx2`` errors, a watch that stays
quiet past its read timeout an ``httpx2.ReadTimeout``. There are no retries here: the watcher's backoff
is the one retry policy. Connections are short to open, and TCP keep-alives find a dead peer of a quiet
watch.

Watches are cut short from another thread by :meth:`Watch.stop`, which shuts the socket down under the
reading thread (closing the response alone would leave that thread blocked in ``recv``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx2

from kubeoidc_contract.cluster_access import ClusterAccess

#: Seconds to open a connection to the API server: it answers at once when it is up.
CONNECT_TIMEOUT = 5.0
#: Seconds a read (a list, one object) may take to answer.
READ_TIMEOUT = 60.0

_KEEPALIVE = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]


class ApiError(Exception):
    """The API server answered with an error status (or a watch sent an ``ERROR`` event)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class KubeApi:
    """Reads from one API server; safe to use from several threads."""

    def __init__(self, access: ClusterAccess) -> None:
        self._access = access
        transport = httpx2.HTTPTransport(
            verify=access.ssl_context if access.ssl_context is not None else True,
            socket_options=_KEEPALIVE,
        )
        self._http = httpx2.Client(
            base_url=access.server,
            transport=transport,
            timeout=httpx2.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept}
        if self._access.token is not None:
            headers["Authorization"] = f"Bearer {self._access.token()}"
        return headers

    def get_json(
        self, path: str, params: Mapping[str, str | int] | None = None, *, accept: str = "application/json"
    ) -> dict[str, Any]:
        """The JSON object at ``path``; :class:`ApiError` for any answer but 2xx. ``accept``: the media
        type to ask for (the API server answers 406 to a JSON Web Key Set asked for as plain JSON)."""
        response = self._http.get(path, params=dict(params or {}), headers=self._headers(accept))
        if not response.is_success:
            raise ApiError(response.status_code, _reason(response.content, response.reason_phrase))
        document = response.json()
        if not isinstance(document, dict):
            raise ApiError(response.status_code, "the answer is not a JSON object")
        return document

    def watch(
        self,
        path: str,
        params: Mapping[str, str | int],
        read_timeout: float,
        opened: Callable[[], None] | None = None,
    ) -> Watch:
        """A watch request on ``path`` (``watch=true`` is added); iterate the :class:`Watch` for events.
        ``opened`` is called once the API server has accepted the request."""
        return Watch(self, path, {**params, "watch": "true"}, read_timeout, opened)


class Watch:
    """One watch request: iterating it opens the request and yields each event (a dict) as it comes."""

    def __init__(
        self,
        api: KubeApi,
        path: str,
        params: Mapping[str, str | int],
        read_timeout: float,
        opened: Callable[[], None] | None = None,
    ) -> None:
        self._api = api
        self._path = path
        self._params = dict(params)
        self._timeout = httpx2.Timeout(CONNECT_TIMEOUT, read=read_timeout)
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._stopped = False
        self._opened = opened

    def stop(self) -> None:
        """End the watch from any thread: the iterating thread sees the end of the stream (or an error)."""
        with self._lock:
            self._stopped = True
            if self._socket is not None:
                with contextlib.suppress(OSError):  # already closed
                    self._socket.shutdown(socket.SHUT_RDWR)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        http = self._api._http
        with http.stream(
            "GET", self._path, params=self._params, headers=self._api._headers(), timeout=self._timeout
        ) as response:
            if not response.is_success:
                raise ApiError(response.status_code, _reason(response.read(), response.reason_phrase))
            with self._lock:
                if self._stopped:
                    return
                self._socket = _socket_of(response)
            if self._opened is not None:
                self._opened()  # the status line and headers are in: the API accepted the watch
            try:
                for line in response.iter_lines():
                    if self._stopped:
                        return
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if not isinstance(event, dict):
                        continue
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise ApiError(int(status.get("code") or 500), str(status.get("message") or "error"))
                    yield event
            except (httpx2.ReadError, httpx2.RemoteProtocolError):
                if self._stopped:
                    return  # our own shutdown, not a failure
                raise
            finally:
                with self._lock:
                    self._socket = None


def _socket_of(response: httpx2.Response) -> socket.socket | None:
    stream = response.extensions.get("network_stream")
    found = stream.get_extra_info("socket") if stream is not None else None
    return found if isinstance(found, socket.socket) else None


def _reason(body: bytes, fallback: str) -> str:
    """The message of a Kubernetes ``Status`` answer, else the HTTP reason (never the whole body)."""
    try:
        status = json.loads(body)
    except ValueError:
        return fallback
    message = status.get("message") if isinstance(status, dict) else None
    return message[:500] if isinstance(message, str) and message else fallback
