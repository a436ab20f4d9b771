"""The operator's only door to the Kubernetes API: Secrets and OIDCClients as plain dicts.

A small synchronous HTTP client (kopf runs sync handlers in threads): the standard library's
``http.client``, one keep-alive connection per handler thread, and the credentials of
:mod:`kubeoidc_contract.cluster_access` read once at start (a token file is read again only when the
kubelet replaces it). Objects go in and come out as the JSON the API serves, never as client models: a
reconcile's four calls cost little more than their JSON. Writes are JSON merge patches (never PUT); status
is written only through the ``status`` subresource. Answers 404 and 409 become :class:`NotFound` and
:class:`Conflict`; a conflict means "read again and retry". An API server that is away (no connection, a
timeout, a 5xx or 429 answer) is :class:`Unavailable`: the caller retries soon. Any other error answer
(403, 422, ...) is :class:`Refused`, with the API server's message. Every call has a connect and read
timeout, and a call is not retried here, so a call during an outage fails at once instead of hanging or
hammering. The one exception: a kept-alive connection that the API server closed while idle is opened
again once (the call most likely never reached it, and every write here is safe to send twice).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from kubeoidc_contract import GROUP, IDENTITY_SOURCE_PLURAL, PLURAL, VERSION
from kubeoidc_contract.api_status import status_message
from kubeoidc_contract.cluster_access import ClusterAccess, from_environment

from .errors import Conflict, NotFound, Refused, Unavailable

MERGE_PATCH: Final = "application/merge-patch+json"
#: Seconds to open a connection (an API server that is up connects at once), and to wait for an answer.
CONNECT_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 30.0
#: Reconciles that may run at once (kopf's handler threads, each with its own connection): a reconcile
#: mostly waits for the API server, so many clients created at once need many in flight.
CONCURRENT_CALLS: Final = 16
#: What a kept-alive connection closed by the server while idle raises on its next request.
_CLOSED_WHILE_IDLE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def _reason(status: int, content: bytes) -> str:
    return status_message(content) or http.client.responses.get(status, "")


class KubeApi:
    """Reads and writes OIDCClients, IdentitySources and Secrets; safe to use from several threads."""

    def __init__(self, access: ClusterAccess) -> None:
        self._access = access
        self._prefix = access.path_prefix
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._opened_lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> KubeApi:
        """The pod's ServiceAccount when in a pod, else the kubeconfig (``cluster_access``)."""
        return cls(from_environment())

    def close(self) -> None:
        """Close every thread's connection (a thread that calls again opens a new one)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def __enter__(self) -> KubeApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it was used before (it may have been closed since)."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and connection.sock is not None:
            return connection, True
        connection = self._access.connection(CONNECT_TIMEOUT)
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(READ_TIMEOUT)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.connection = connection
        with self._opened_lock:
            self._opened.append(connection)
        return connection, False

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None
        with self._opened_lock:
            if connection in self._opened:
                self._opened.remove(connection)

    def _exchange(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request(method, self._prefix + path, body=content, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except _CLOSED_WHILE_IDLE:
                self._drop(connection)
                if reused and attempt == 1:
                    # Closed by the server while idle: the call most likely never reached it, and a write
                    # sent again is safe (a create answers 409, a merge patch repeats, a delete 404).
                    continue
                raise
            except BaseException:
                self._drop(connection)
                raise
            if response.will_close:
                self._drop(connection)
            return response.status, data
        raise AssertionError("unreachable")

    def _call(
        self,
        what: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if self._access.token is not None:
            headers["Authorization"] = f"Bearer {self._access.token()}"
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body, separators=(",", ":")).encode()
        try:
            status, data = self._exchange(method, path, content, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise Unavailable(f"{what}: the API server is unreachable ({type(exc).__name__})") from exc
        if status < 300:
            try:
                document = json.loads(data or b"{}")
            except ValueError:
                # Not the API server's answer (a proxy's page, a cut body): as if it were away.
                raise Unavailable(f"{what}: the answer is not JSON") from None
            return document if isinstance(document, dict) else {}
        if status == 404:
            raise NotFound(f"{what}: not found")
        if status == 409:
            raise Conflict(f"{what}: conflict ({_reason(status, data)})")
        if status == 429 or status >= 500:
            raise Unavailable(
                f"{what}: the API server answered {status} {http.client.responses.get(status, '')}"
            )
        raise Refused(f"{what}: the API server answered {status}: {_reason(status, data)}", status=status)

    # Paths.

    @staticmethod
    def _custom(plural: str, namespace: str | None = None, name: str | None = None) -> str:
        path = f"/apis/{GROUP}/{VERSION}"
        if namespace is not None:
            path += f"/namespaces/{quote(namespace, safe='')}"
        path += f"/{plural}"
        return f"{path}/{quote(name, safe='')}" if name is not None else path

    @staticmethod
    def _secret(namespace: str, name: str | None = None) -> str:
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets"
        return f"{path}/{quote(name, safe='')}" if name is not None else path

    # OIDCClients.

    def get_client(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call(f"OIDCClient {namespace}/{name}", "GET", self._custom(PLURAL, namespace, name))

    def list_clients(self, namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
        """All OIDCClients in ``namespaces``, or in the whole cluster when it is empty."""
        paths = [self._custom(PLURAL, namespace) for namespace in namespaces] or [self._custom(PLURAL)]
        items: list[Any] = []
        for path in paths:
            items.extend(self._call("OIDCClient list", "GET", path).get("items") or [])
        return [item for item in items if isinstance(item, dict)]

    def patch_client_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge ``status`` into the OIDCClient's status, through the status subresource."""
        path = self._custom(PLURAL, namespace, name) + "/status"
        return self._call(
            f"OIDCClient {namespace}/{name} status",
            "PATCH",
            path,
            {"status": status},
            content_type=MERGE_PATCH,
        )

    # IdentitySources (in the operator's identity namespace).

    def list_identity_sources(self, namespace: str) -> list[dict[str, Any]]:
        path = self._custom(IDENTITY_SOURCE_PLURAL, namespace)
        items = self._call(f"IdentitySource list in {namespace}", "GET", path).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    def patch_identity_source_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        path = self._custom(IDENTITY_SOURCE_PLURAL, namespace, name) + "/status"
        self._call(
            f"IdentitySource {namespace}/{name} status",
            "PATCH",
            path,
            {"status": status},
            content_type=MERGE_PATCH,
        )

    # Secrets.

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call(f"Secret {namespace}/{name}", "GET", self._secret(namespace, name))

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret, or None if there is none."""
        try:
            return self.get_secret(namespace, name)
        except NotFound:
            return None

    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("metadata", {}).get("name")
        return self._call(f"Secret {namespace}/{name}", "POST", self._secret(namespace), body)

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch; a ``metadata.resourceVersion`` in it makes a stale write fail (409)."""
        return self._call(
            f"Secret {namespace}/{name}",
            "PATCH",
            self._secret(namespace, name),
            patch,
            content_type=MERGE_PATCH,
        )

    def delete_secret(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        """Delete the Secret; with ``uid``, only if it is still that very object (else :class:`Conflict`)."""
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid:
            options["preconditions"] = {"uid": uid}
        self._call(f"Secret {namespace}/{name}", "DELETE", self._secret(namespace, name), options)

    # Cluster-scoped objects of other groups (kopf's peering).

    def find_cluster_object(self, group: str, version: str, plural: str, name: str) -> dict[str, Any] | None:
        """The cluster-scoped object, or None if there is none."""
        path = f"/apis/{group}/{version}/{plural}/{quote(name, safe='')}"
        try:
            return self._call(f"{plural} {name}", "GET", path)
        except NotFound:
            return None
