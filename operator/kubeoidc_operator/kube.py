"""The operator's only door to the Kubernetes API: Secrets and OIDCClients as plain dicts.

A thin layer over the synchronous ``kubernetes`` client (kopf runs sync handlers in threads). Objects
go in and come out as the JSON the API serves, never as client models. Writes are JSON merge patches
(never PUT); status is written only through the ``status`` subresource. API errors 404 and 409 become
:class:`NotFound` and :class:`Conflict`; a conflict means "read again and retry". An API server that is
away (no connection, a timeout, a 5xx or 429 answer) is :class:`Unavailable`: the caller retries soon.
Every call has a short connect timeout and a read timeout, and the client makes no retries of its own,
so a call during an outage fails at once instead of hanging or hammering.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any, Final

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from kubeoidc_contract import GROUP, IDENTITY_SOURCE_PLURAL, PLURAL, VERSION

from .errors import Conflict, NotFound, Unavailable

MERGE_PATCH: Final = "application/merge-patch+json"
#: (connect, read) seconds for every call: an API server that is up connects at once.
REQUEST_TIMEOUT: Final = (5.0, 30.0)
#: Reconciles that may run at once (kopf's handler threads), and connections kept open for them: a
#: reconcile mostly waits for the API server, so many clients created at once need many in flight.
CONCURRENT_CALLS: Final = 16


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except ApiException as exc:
        if exc.status == 404:
            raise NotFound(f"{what}: not found") from exc
        if exc.status == 409:
            raise Conflict(f"{what}: conflict ({exc.reason})") from exc
        if isinstance(exc.status, int) and (exc.status == 429 or exc.status >= 500):
            raise Unavailable(f"{what}: the API server answered {exc.status} {exc.reason}") from exc
        raise
    except urllib3.exceptions.HTTPError as exc:
        raise Unavailable(f"{what}: the API server is unreachable ({type(exc).__name__})") from exc


def _json(response: Any) -> dict[str, Any]:
    # Responses are read raw (``_preload_content=False``) so objects stay the API's JSON.
    document = json.loads(response.data or b"{}")
    return document if isinstance(document, dict) else {}


class KubeApi:
    """Reads and writes OIDCClients and Secrets through one ``ApiClient``."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._core = _Timed(k8s.CoreV1Api(api_client))
        self._custom = _Timed(k8s.CustomObjectsApi(api_client))

    @classmethod
    def from_environment(cls) -> KubeApi:
        """Configured in-cluster (service account), else from the kubeconfig file."""
        return cls(api_client_from_environment())

    # OIDCClients.

    def get_client(self, namespace: str, name: str) -> dict[str, Any]:
        with _translated(f"OIDCClient {namespace}/{name}"):
            return _json(
                self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _preload_content=False
                )
            )

    def list_clients(self, namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
        """All OIDCClients in ``namespaces``, or in the whole cluster when it is empty."""
        items: list[dict[str, Any]] = []
        with _translated("OIDCClient list"):
            if not namespaces:
                response = self._custom.list_cluster_custom_object(
                    GROUP, VERSION, PLURAL, _preload_content=False
                )
                items.extend(_json(response).get("items") or [])
            for namespace in namespaces:
                response = self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, _preload_content=False
                )
                items.extend(_json(response).get("items") or [])
        return [item for item in items if isinstance(item, dict)]

    def patch_client_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge ``status`` into the OIDCClient's status, through the status subresource."""
        with _translated(f"OIDCClient {namespace}/{name} status"):
            return _json(
                self._custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    name,
                    {"status": status},
                    _content_type=MERGE_PATCH,
                    _preload_content=False,
                )
            )

    # IdentitySources (in the operator's identity namespace).

    def list_identity_sources(self, namespace: str) -> list[dict[str, Any]]:
        with _translated(f"IdentitySource list in {namespace}"):
            response = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, IDENTITY_SOURCE_PLURAL, _preload_content=False
            )
        return [item for item in _json(response).get("items") or [] if isinstance(item, dict)]

    def patch_identity_source_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with _translated(f"IdentitySource {namespace}/{name} status"):
            self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                IDENTITY_SOURCE_PLURAL,
                name,
                {"status": status},
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )

    # Secrets.

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        with _translated(f"Secret {namespace}/{name}"):
            return _json(self._core.read_namespaced_secret(name, namespace, _preload_content=False))

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret, or None if there is none."""
        try:
            return self.get_secret(namespace, name)
        except NotFound:
            return None

    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("metadata", {}).get("name")
        with _translated(f"Secret {namespace}/{name}"):
            return _json(
                self._core.create_namespaced_secret(
                    namespace, k8s.V1Secret.model_validate(body), _preload_content=False
                )
            )

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch; a ``metadata.resourceVersion`` in it makes a stale write fail (409)."""
        with _translated(f"Secret {namespace}/{name}"):
            return _json(
                self._core.patch_namespaced_secret(
                    name, namespace, patch, _content_type=MERGE_PATCH, _preload_content=False
                )
            )

    def delete_secret(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        """Delete the Secret; with ``uid``, only if it is still that very object (else :class:`Conflict`)."""
        options = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid) if uid else None)
        with _translated(f"Secret {namespace}/{name}"):
            self._core.delete_namespaced_secret(name, namespace, body=options, _preload_content=False)


def api_client_from_environment() -> k8s.ApiClient:
    """An API client configured in-cluster (service account), else from the kubeconfig file; it makes no
    retries of its own (urllib3 would repeat each failed call three times at once)."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.retries = 0
    configuration.connection_pool_maxsize = CONCURRENT_CALLS
    return k8s.ApiClient(configuration)


class _Timed:
    """An API object whose every call carries :data:`REQUEST_TIMEOUT` (unless the call sets its own)."""

    def __init__(self, api: Any) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._api, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
            return method(*args, **kwargs)

        return call
