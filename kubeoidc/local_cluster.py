"""A stand-in for the API server on one machine: OIDCClients and Secrets as JSON files in a folder.

``kubeoidc dev`` reconciles into it with the operator's own reconciler, which reads and writes it as it
would a cluster (the controller's ``ClusterApi``): status and Secrets live in the state folder, so
credentials survive a restart and rotate only through the annotation. Patches are applied as the API
server applies them (RFC 7386), with uids and resourceVersions of its own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kubeoidc_operator.errors import Conflict, NotFound
from kubeoidc_operator.ownership import is_owned

Key = tuple[str, str]  # (namespace, name)
#: Where a manifest without a namespace goes, as with kubectl.
DEFAULT_NAMESPACE = "default"


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as the API server applies the operator's patches."""
    result = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class LocalCluster:
    """The OIDCClients and Secrets the operator reads and writes, kept in a folder instead of a cluster.

    It answers the same calls as the operator's Kubernetes access module. OIDCClients come from the
    manifests (``apply``/``remove``); their uid, generation and status, and the Secrets, are JSON files.
    """

    def __init__(self, state_dir: Path) -> None:
        self._objects = state_dir / "objects"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._clients: dict[Key, dict[str, Any]] = {}
        self._lock = threading.RLock()

    # What the manifests say --------------------------------------------------------------------------
    def apply(self, manifest: Mapping[str, Any]) -> None:
        """Create or update an OIDCClient from its manifest, keeping its identity and status."""
        meta = manifest["metadata"]
        key = (meta.get("namespace") or DEFAULT_NAMESPACE, meta["name"])
        with self._lock:
            record = self._read("oidcclient", key) or {
                "uid": str(uuid.uuid4()),
                "generation": 0,
                "status": {},
            }
            spec_hash = hashlib.sha256(json.dumps(manifest.get("spec"), sort_keys=True).encode()).hexdigest()
            if record.get("specHash") != spec_hash:
                record.update(generation=record["generation"] + 1, specHash=spec_hash)
                self._write("oidcclient", key, record)
            obj = copy.deepcopy(dict(manifest))
            obj["metadata"] = {
                **copy.deepcopy(dict(meta)),
                "namespace": key[0],
                "uid": record["uid"],
                "generation": record["generation"],
            }
            obj["status"] = record["status"]
            self._clients[key] = obj

    def remove(self, key: Key) -> None:
        """Delete an OIDCClient, and what the garbage collector would delete with it: its Secrets."""
        with self._lock:
            obj = self._clients.pop(key, None)
            record = self._read("oidcclient", key)
            uid = (obj or {}).get("metadata", {}).get("uid") or (record or {}).get("uid")
            for secret in self._secrets(key[0]):
                if is_owned(secret, uid):
                    self._path("secret", (key[0], secret["metadata"]["name"])).unlink(missing_ok=True)
            self._path("oidcclient", key).unlink(missing_ok=True)

    def keys(self) -> set[Key]:
        with self._lock:
            return set(self._clients)

    def manifest_of(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            obj = self._clients.get(key)
            return copy.deepcopy(obj) if obj is not None else None

    def secrets(self) -> list[dict[str, Any]]:
        with self._lock:
            return [secret for namespace in self._namespaces() for secret in self._secrets(namespace)]

    # What the operator calls ---------------------------------------------------------------------------
    def get_client(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._clients.get((namespace, name))
            if obj is None:
                raise NotFound(f"OIDCClient {namespace}/{name}")
            return copy.deepcopy(obj)

    def list_clients(self, namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (ns, _), obj in self._clients.items()
                if not namespaces or ns in namespaces
            ]

    def patch_client_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        key = (namespace, name)
        with self._lock:
            obj = self._clients.get(key)
            record = self._read("oidcclient", key)
            if obj is None or record is None:
                raise NotFound(f"OIDCClient {namespace}/{name}")
            obj["status"] = merge_patch(obj.get("status") or {}, status)
            record["status"] = obj["status"]
            self._write("oidcclient", key, record)
            return copy.deepcopy(obj)

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        secret = self.find_secret(namespace, name)
        if secret is None:
            raise NotFound(f"Secret {namespace}/{name}")
        return secret

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._read("secret", (namespace, name))

    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        secret = copy.deepcopy(body)
        secret["metadata"] = {**secret.get("metadata", {}), "namespace": namespace, "uid": str(uuid.uuid4())}
        key = (namespace, secret["metadata"]["name"])
        with self._lock:
            if self._read("secret", key) is not None:
                # As the API server answers (409): the reconciler then reads the Secret and plans again.
                raise Conflict(f"Secret {namespace}/{key[1]} already exists")
            self._write("secret", key, secret)
        return secret

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            secret = self.get_secret(namespace, name)
            patched = merge_patch(secret, patch)
            patched["metadata"].pop("resourceVersion", None)
            self._write("secret", (namespace, name), patched)
            return patched

    def delete_secret(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        with self._lock:
            self.get_secret(namespace, name)
            self._path("secret", (namespace, name)).unlink(missing_ok=True)

    # Files ---------------------------------------------------------------------------------------------
    def _path(self, kind: str, key: Key) -> Path:
        return self._objects / key[0] / f"{kind}.{key[1]}.json"

    def _read(self, kind: str, key: Key) -> dict[str, Any] | None:
        path = self._path(kind, key)
        if not path.exists():
            return None
        value: dict[str, Any] = json.loads(path.read_text())
        return value

    def _write(self, kind: str, key: Key, value: Mapping[str, Any]) -> None:
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        # Secrets hold client secrets: readable by the owner only.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(value, stream, indent=2, sort_keys=True)
        temporary.replace(path)

    def _namespaces(self) -> list[str]:
        return sorted(path.name for path in self._objects.iterdir() if path.is_dir())

    def _secrets(self, namespace: str) -> list[dict[str, Any]]:
        folder = self._objects / namespace
        return [json.loads(path.read_text()) for path in sorted(folder.glob("secret.*.json"))]
