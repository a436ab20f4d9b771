"""Fixtures for the operator's unit tests: OIDCClients and Secrets as plain dicts, and a tiny API server.

``Cluster`` applies plans the way the API server would (create, JSON merge patch, delete, status merge
patch), so a test can run the reconcile decision again and again over its own results.
"""

from __future__ import annotations

import base64
import copy
import datetime
from collections.abc import Callable
from typing import Any

import pytest

from kubeoidc_operator import ownership, reconcile
from kubeoidc_operator.reconcile import Plan

ISSUER = "https://login.example.com"
T0 = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


class CountingCredentials:
    """Deterministic credentials: client-0001, ...; secrets of 43 URL-safe characters."""

    def __init__(self) -> None:
        self.ids = 0
        self.secrets = 0

    def client_id(self) -> str:
        self.ids += 1
        return f"client-{self.ids:04d}"

    def client_secret(self) -> str:
        self.secrets += 1
        return f"secret{self.secrets:037d}"


def merge(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def make_client(
    name: str = "web",
    *,
    namespace: str = "apps",
    uid: str | None = None,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    created: str = "2025-01-01T00:00:00Z",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": uid or f"uid-{name}",
        "generation": generation,
        "creationTimestamp": created,
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    body: dict[str, Any] = {
        "apiVersion": "kubeoidc.io/v1alpha1",
        "kind": "OIDCClient",
        "metadata": meta,
        "spec": {"redirectURIs": ["https://app.example.com/callback"], **(spec or {})},
    }
    if status is not None:
        body["status"] = status
    return body


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}


def foreign_secret(name: str, namespace: str = "apps") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7", "uid": "other-uid"},
        "type": "Opaque",
        "data": {"password": base64.b64encode(b"hunter2").decode()},
    }


class Cluster:
    """One OIDCClient, the Secrets of its namespace, and what the last reconcile did."""

    def __init__(self, client: dict[str, Any], credentials: CountingCredentials) -> None:
        self.client = client
        self.secrets: dict[str, dict[str, Any]] = {}
        self.credentials = credentials
        self.now = T0
        self.claimed: dict[str, str] = {}
        self.issuer = ISSUER
        self.writes = 0

    def plan(self) -> Plan:
        name = ownership.secret_name(self.client)
        recorded = self.client.get("status", {}).get("secretName")
        previous = self.secrets.get(recorded) if recorded and recorded != name else None
        return reconcile.plan(
            self.client,
            current=self.secrets.get(name),
            previous=previous,
            claimed=self.claimed,
            issuer=self.issuer,
            now=self.now,
            credentials=self.credentials,
        )

    def reconcile(self) -> Plan:
        return self.apply(self.plan())

    def apply(self, result: Plan, *, status: bool = True) -> Plan:
        """Apply a plan as the API server would; ``status=False`` loses the status write."""
        if result.secret is not None and result.action == "create":
            self.secrets[result.secret["metadata"]["name"]] = copy.deepcopy(result.secret)
        elif result.secret is not None and result.action == "patch":
            name = result.secret["metadata"]["name"]
            self.secrets[name] = merge(self.secrets[name], result.secret_patch)
            for part in ("labels", "annotations"):  # The API server drops empty maps.
                if self.secrets[name]["metadata"].get(part) == {}:
                    del self.secrets[name]["metadata"][part]
        if result.delete_secret is not None:
            del self.secrets[result.delete_secret]
        if result.status and status:
            self.client = merge(self.client, {"status": result.status})
        self.writes += int(result.writes)
        return result

    @property
    def secret(self) -> dict[str, Any]:
        return self.secrets[ownership.secret_name(self.client)]

    def data(self, name: str | None = None) -> dict[str, str]:
        """The decoded data of the client's Secret (or of the Secret called ``name``)."""
        return decoded(self.secrets[name or ownership.secret_name(self.client)])

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.client["status"]["conditions"] if c["type"] == type_)

    def annotate(self, **annotations: str) -> None:
        self.client["metadata"].setdefault("annotations", {}).update(annotations)

    def edit_spec(self, **changes: Any) -> None:
        self.client["spec"] = merge(self.client["spec"], changes)
        self.client["metadata"]["generation"] += 1


@pytest.fixture
def credentials() -> CountingCredentials:
    return CountingCredentials()


@pytest.fixture
def cluster(credentials: CountingCredentials) -> Callable[..., Cluster]:
    def make(**kwargs: Any) -> Cluster:
        return Cluster(make_client(**kwargs), credentials)

    return make


@pytest.fixture
def client_factory() -> Callable[..., dict[str, Any]]:
    return make_client


@pytest.fixture
def unowned_secret() -> Callable[..., dict[str, Any]]:
    return foreign_secret
