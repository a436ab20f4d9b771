"""The provider's own small client of the Kubernetes API: get a JSON document, open a watch.

All the provider ever asks of the API is to read: one object or one page of a list (``get_json``) and
the events of a watch (``watch``), objects staying the API's JSON (never client models). An answer other
than 2xx raises :class:`ApiError` with the HTTP status; so do a watch's ``ERROR`` event (its status: 410
when the resourceVersion has expired), a 2xx answer that is not a JSON object (a proxy's page), and a
watch event that is not JSON or longer than any object of the API. A
transport failure is an ``OSError`` (``TimeoutError`` when the API server stays silent past a timeout) or
an ``http.client.HTTPException`` (``IncompleteRead`` for a body or a watch event cut short). There are
no retries here: the watcher's backoff is the one retry policy.

It speaks HTTP/1.1 through the standard library's ``http.client``, as the operator's API client does: the
watcher runs each stream on a thread of its own, and this is all it needs (an HTTP library would cost
the provider some 3 MiB of memory for nothing more). The credentials come from
:mod:`kubeoidc_contract.cluster_access`: its TLS context (the cluster's CA, a client certificate) and its
bearer token, asked for at each request (a token file is read again once the kubelet replaced it).

One connection per request, closed after it: the provider's calls are few and far apart (a list's pages
at start and after a 410, one watch request every few minutes per stream, the ServiceAccount issuer's
discovery now and then), so a kept connection would mostly sit idle until the API server closes it, and
every request would need a rule for that. A TCP and TLS handshake per request costs a few milliseconds.
A read (``get_json``) has a deadline for its body, checked before each read and bounding it, so a
server that trickles its answer holds no thread for long (within one read, ``http.client`` may read a
chunk's size line or the trailer of a chunked body in several steps, each with its own timeout; the
status line and headers, which the API server sends at once, have a timeout per read); an error answer
is read up to ``MAX_ERROR_BYTES``. A watch has a timeout per read (the watcher sets it a little past the
watch's server-side timeout), and TCP keep-alives (``KEEPALIVE_*``, where the platform has them) find a
dead peer of a quiet watch within about a minute.

Watches are cut short from another thread by :meth:`Watch.stop`, which shuts the socket down under the
reading thread (closing the connection alone would leave that thread blocked in ``recv``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from kubeoidc_contract.api_status import status_message
from kubeoidc_contract.cluster_access import ClusterAccess

#: Seconds to open a connection to the API server (TLS handshake included): it answers at once when up.
CONNECT_TIMEOUT = 5.0
#: Seconds a read (a list's page, one object) may take to answer, in all.
READ_TIMEOUT = 60.0
#: The longest watch event taken (an object of the API is at most about 1.5 MiB, the size etcd allows);
#: a longer line is refused (an :class:`ApiError`) rather than buffered without end.
MAX_EVENT_BYTES = 16 * 1024 * 1024

#: What is read of an error answer: its message is all that is kept of it (a proxy's page may be large).
MAX_ERROR_BYTES = 64 * 1024
#: A connection idle this many seconds is probed, every ``KEEPALIVE_INTERVAL`` seconds, and given up after
#: ``KEEPALIVE_PROBES`` probes unanswered: a watch whose API server vanished (a node gone, a partition)
#: fails in about a minute instead of at its read timeout, minutes later.
KEEPALIVE_IDLE = 30
KEEPALIVE_INTERVAL = 10
KEEPALIVE_PROBES = 3

_READ_SIZE = 64 * 1024


class ApiError(Exception):
    """The API server answered with an error status (or a watch sent an ``ERROR`` event)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class KubeApi:
    """Reads from one API server; safe to use from several threads (each request has its connection)."""

    def __init__(self, access: ClusterAccess) -> None:
        self._access = access
        self._prefix = access.path_prefix

    def close(self) -> None:
        """Nothing is kept open between requests; here for the callers that close what they made."""

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept, "Connection": "close"}
        if self._access.token is not None:
            headers["Authorization"] = f"Bearer {self._access.token()}"
        return headers

    def _target(self, path: str, params: Mapping[str, str | int] | None) -> str:
        query = urlencode(params) if params else ""
        return f"{self._prefix}{path}?{query}" if query else f"{self._prefix}{path}"

    def _open(
        self,
        target: str,
        headers: Mapping[str, str],
        read_timeout: float,
        connected: Callable[[socket.socket], None] | None = None,
    ) -> Exchange:
        """Connect, send a GET for ``target``, and read the status line and headers. ``connected`` gets
        the socket as soon as there is one (a watch's ``stop`` can then cut even a slow answer short)."""
        connection = self._access.connection(CONNECT_TIMEOUT)
        try:
            connection.connect()
            sock = connection.sock
            assert sock is not None
            _keep_alive(sock)
            sock.settimeout(read_timeout)
            if connected is not None:
                connected(sock)
            connection.request("GET", target, headers=dict(headers))
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return Exchange(connection, sock, response)

    def get_json(
        self, path: str, params: Mapping[str, str | int] | None = None, *, accept: str = "application/json"
    ) -> dict[str, Any]:
        """The JSON object at ``path``; :class:`ApiError` for any answer but 2xx. ``accept``: the media
        type to ask for (the API server answers 406 to a JSON Web Key Set asked for as plain JSON)."""
        deadline = _deadline()
        exchange = self._open(self._target(path, params), self._headers(accept), READ_TIMEOUT)
        status = exchange.response.status
        with exchange:
            body = exchange.read_all(deadline, None if 200 <= status < 300 else MAX_ERROR_BYTES)
        if not 200 <= status < 300:
            raise ApiError(status, _reason(body, exchange.response.reason))
        try:
            document = json.loads(body)
        except ValueError:
            raise ApiError(status, "the answer is not JSON") from None
        if not isinstance(document, dict):
            raise ApiError(status, "the answer is not a JSON object")
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


class Exchange:
    """One request's connection, its socket and the response whose status line and headers are in."""

    def __init__(
        self, connection: http.client.HTTPConnection, sock: socket.socket, response: http.client.HTTPResponse
    ) -> None:
        self.connection = connection
        self.socket = sock
        self.response = response

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *_: object) -> None:
        # With "Connection: close" http.client hands the socket over to the response: close both.
        self.response.close()
        self.connection.close()

    def read_all(self, deadline: float, limit: int | None = None) -> bytes:
        """The whole body (Content-Length, chunked, or until the server closes), read by ``deadline``; with
        ``limit``, its first ``limit`` bytes at most (the rest is left unread: the connection is closed)."""
        parts: list[bytes] = []
        size = 0
        while limit is None or size < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the API server did not finish its answer in time")
            self.socket.settimeout(left)
            part = self.response.read1(_READ_SIZE)
            if not part:
                break
            parts.append(part)
            size += len(part)
        body = b"".join(parts)
        if limit is not None and size >= limit:
            return body[:limit]
        if self.response.length:  # a Content-Length the server did not send in full before it closed
            raise http.client.IncompleteRead(body, self.response.length)
        return body

    def lines(self) -> Iterator[bytes]:
        """The body's lines as they come (a watch: one JSON event per line), without their newline.

        The body ends cleanly only after a whole line; a server that closes it in the middle of one
        raises ``IncompleteRead`` (that line, half an event, is never handed on)."""
        # A bytearray grows in place: a long event arriving in many parts is not copied again at each.
        pending = bytearray()
        while True:
            part = self.response.read1(_READ_SIZE)
            if not part:
                break
            if b"\n" not in part:  # only the new part is searched: a long line is not scanned again
                pending += part
                if len(pending) > MAX_EVENT_BYTES:
                    raise ApiError(
                        self.response.status, f"a watch event is longer than {MAX_EVENT_BYTES} bytes"
                    )
                continue
            first, *complete, rest = part.split(b"\n")
            yield bytes(pending + first)
            yield from complete
            pending = bytearray(rest)
        if self.response.length:
            raise http.client.IncompleteRead(bytes(pending), self.response.length)
        if pending.strip():
            raise http.client.IncompleteRead(bytes(pending))


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
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._stopped = False
        self._opened = opened

    def _connected(self, sock: socket.socket) -> None:
        with self._lock:
            self._socket = sock
            if self._stopped:  # stop() came while this was connecting
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """End the watch from any thread: the iterating thread sees the end of the stream (or an error)."""
        with self._lock:
            self._stopped = True
            if self._socket is not None:
                with contextlib.suppress(OSError):  # already closed
                    self._socket.shutdown(socket.SHUT_RDWR)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        api = self._api
        target = api._target(self._path, self._params)
        try:
            with api._open(target, api._headers(), self._read_timeout, self._connected) as exchange:
                yield from self._events(exchange)
        except (OSError, http.client.HTTPException):
            if self._stopped:
                return  # our own shutdown (while connecting, waiting or reading), not a failure
            raise
        finally:
            with self._lock:
                self._socket = None

    def _events(self, exchange: Exchange) -> Iterator[dict[str, Any]]:
        response = exchange.response
        if not 200 <= response.status < 300:
            body = exchange.read_all(_deadline(), MAX_ERROR_BYTES)
            raise ApiError(response.status, _reason(body, response.reason))
        if self._stopped:
            return
        if self._opened is not None:
            self._opened()  # the status line and headers are in: the API accepted the watch
        for line in exchange.lines():
            if self._stopped:
                return
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                # Not the API server's (a proxy's page): what follows cannot be trusted either.
                raise ApiError(response.status, "a watch event is not JSON") from None
            if not isinstance(event, dict):
                continue
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                raise ApiError(int(status.get("code") or 500), str(status.get("message") or "error"))
            yield event


def _keep_alive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
    ):
        if hasattr(socket, option):  # Linux has all three; elsewhere the system's defaults stay
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _deadline() -> float:
    return time.monotonic() + READ_TIMEOUT


def _reason(body: bytes, fallback: str) -> str:
    """The message of a Kubernetes ``Status`` answer, else the HTTP reason (never the whole body)."""
    message = status_message(body)
    return message[:500] if message else fallback
