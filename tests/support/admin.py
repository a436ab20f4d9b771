"""The tests' own hands on the control plane: a cluster admin (``system:masters``), as a person with
kubectl would act, through the ``kubernetes`` client. Objects go in and come out as the API's JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

import kubeoidc_contract as contract
from support.release import eventually

MERGE_PATCH = "application/merge-patch+json"


def _json(response: Any) -> dict[str, Any]:
    document = json.loads(response.data or b"{}")
    return document if isinstance(document, dict) else {}


def oidcclient(
    name: str, spec: Mapping[str, Any], *, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An OIDCClient manifest."""
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": metadata,
        "spec": dict(spec),
    }


def decoded(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's data, decoded."""
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


def ready_credentials(admin: Admin, namespace: str, name: str, timeout: float = 60.0) -> dict[str, str]:
    """The decoded Secret of an OIDCClient once the operator reports it Ready."""
    client = eventually(
        lambda: (
            (found := admin.find_client(namespace, name))
            and condition(found).get("status") == "True"
            and found
        ),
        f"OIDCClient {namespace}/{name} to be Ready",
        timeout=timeout,
    )
    secret = admin.find_secret(namespace, client["status"]["secretName"])
    assert secret is not None
    return decoded(secret)


def condition(obj: Mapping[str, Any] | None, kind: str = contract.READY_CONDITION) -> dict[str, Any]:
    """A condition of an object's status, or {} if it has none of that type."""
    for found in ((obj or {}).get("status") or {}).get("conditions") or ():
        if found.get("type") == kind:
            result: dict[str, Any] = found
            return result
    return {}


class Admin:
    """Reads and writes OIDCClients, Secrets and namespaces as a cluster admin."""

    def __init__(self, kubeconfig: Path) -> None:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
        self.api_client = k8s.ApiClient(configuration)
        self.core = k8s.CoreV1Api(self.api_client)
        self.custom = k8s.CustomObjectsApi(self.api_client)
        self.extensions = k8s.ApiextensionsV1Api(self.api_client)

    # Namespaces.

    def create_namespace(self, name: str) -> None:
        self.core.create_namespace(
            k8s.V1Namespace.model_validate({"metadata": {"name": name}}), _preload_content=False
        )

    # OIDCClients.

    def create_client(
        self, namespace: str, manifest: Mapping[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Create an OIDCClient; ``dry_run``: only ask the server whether it would (raises ApiException)."""
        return _json(
            self.custom.create_namespaced_custom_object(
                contract.GROUP,
                contract.VERSION,
                namespace,
                contract.PLURAL,
                dict(manifest),
                dry_run="All" if dry_run else None,
                field_validation="Strict",
                _preload_content=False,
            )
        )

    def serves_oidcclients(self) -> bool:
        """Whether the API server serves the OIDCClient resource yet."""
        try:
            self.custom.list_cluster_custom_object(
                contract.GROUP, contract.VERSION, contract.PLURAL, limit=1, _preload_content=False
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def get_client(self, namespace: str, name: str) -> dict[str, Any]:
        return _json(
            self.custom.get_namespaced_custom_object(
                contract.GROUP, contract.VERSION, namespace, contract.PLURAL, name, _preload_content=False
            )
        )

    def find_client(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get_client(namespace, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list_clients(self, namespace: str) -> list[dict[str, Any]]:
        found = _json(
            self.custom.list_namespaced_custom_object(
                contract.GROUP, contract.VERSION, namespace, contract.PLURAL, _preload_content=False
            )
        )
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    def patch_client(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (a ``metadata.resourceVersion`` in it makes it conditional)."""
        return _json(
            self.custom.patch_namespaced_custom_object(
                contract.GROUP,
                contract.VERSION,
                namespace,
                contract.PLURAL,
                name,
                dict(patch),
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )
        )

    def patch_client_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        return _json(
            self.custom.patch_namespaced_custom_object_status(
                contract.GROUP,
                contract.VERSION,
                namespace,
                contract.PLURAL,
                name,
                {"status": dict(status)},
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )
        )

    def annotate_client(self, namespace: str, name: str, key: str, value: str | None) -> dict[str, Any]:
        return self.patch_client(namespace, name, {"metadata": {"annotations": {key: value}}})

    def delete_client(self, namespace: str, name: str) -> None:
        # Background propagation, as kubectl does: the garbage collector deletes what the client owns.
        self.custom.delete_namespaced_custom_object(
            contract.GROUP,
            contract.VERSION,
            namespace,
            contract.PLURAL,
            name,
            propagation_policy="Background",
            _preload_content=False,
        )

    # Secrets.

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _json(self.core.read_namespaced_secret(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list_secrets(self, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        found = _json(
            self.core.list_namespaced_secret(namespace, label_selector=label_selector, _preload_content=False)
        )
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    def create_secret(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return _json(
            self.core.create_namespaced_secret(
                namespace, k8s.V1Secret.model_validate(dict(body)), _preload_content=False
            )
        )

    def patch_secret(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return _json(
            self.core.patch_namespaced_secret(
                name, namespace, dict(patch), _content_type=MERGE_PATCH, _preload_content=False
            )
        )

    def delete_secret(self, namespace: str, name: str) -> None:
        self.core.delete_namespaced_secret(name, namespace, _preload_content=False)

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The core Events about the object ``name`` in ``namespace``."""
        found = _json(
            self.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={name}", _preload_content=False
            )
        )
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    def crd(self, name: str) -> dict[str, Any]:
        return _json(self.extensions.read_custom_resource_definition(name, _preload_content=False))
