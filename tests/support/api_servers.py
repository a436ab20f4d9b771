"""Kubernetes API servers the image's two roles run against, behind one small interface.

- `KmockApiServer`: the kmock API server (no RBAC, no ServiceAccounts) served from a thread of its own,
  so that the tests stay synchronous while containers talk to it.
- `ClusterApiServer`: a real control plane, given as a `ControlPlaneAccess`: an admin kubeconfig, and a
  function that returns the kubeconfig of a role's ServiceAccount, bound to the chart's RBAC. Each role's
  kubeconfig is rewritten with its CA inline, so that it works from inside a container.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import kmock as kmocklib
import yaml
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from kubeoidc_contract import GROUP, PLURAL, VERSION
from support.kmock_api import declare_resources

T = TypeVar("T")
CLIENTS = kmocklib.resource(GROUP, VERSION, PLURAL)


class ApiServer(Protocol):
    """What the image tier needs from an API server."""

    #: The namespace the chart is installed in (its ServiceAccounts, signing keys and namespaced RBAC).
    release_namespace: str

    def ensure_namespace(self, name: str) -> None:
        """Creates the namespace unless it exists (as an administrator)."""
        ...

    def kubeconfig(self, role: str) -> Path:
        """A kubeconfig, readable by any user, in a folder of its own, for the role's ServiceAccount."""
        ...

    def create(self, obj: dict[str, Any]) -> None:
        """Creates an object (as an administrator)."""
        ...

    def read(self, path: str) -> dict[str, Any] | None:
        """The object at an API path (as an administrator); None when it does not exist."""
        ...

    def before_creating_clients(self, timeout: float) -> None:
        """Waits until OIDCClients can be created for the operator to see (kmock: its watch is open)."""
        ...


def api_path(obj: dict[str, Any]) -> str:
    """The collection path of an object's kind (OIDCClients and the core kinds)."""
    namespace = obj["metadata"]["namespace"]
    if obj["apiVersion"] == "v1":
        return f"/api/v1/namespaces/{namespace}/{obj['kind'].lower()}s"
    return f"/apis/{obj['apiVersion']}/namespaces/{namespace}/{PLURAL}"


def write_kubeconfig(folder: Path, server: str, token: str, certificate_authority: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    cluster: dict[str, Any] = {"server": server}
    if certificate_authority:
        cluster["certificate-authority-data"] = certificate_authority
    path = folder / "config"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": cluster}],
                "users": [{"name": "test", "user": {"token": token}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "current-context": "test",
            }
        )
    )
    path.chmod(0o644)
    return path


class KmockApiServer:
    """The kmock API server on a loopback port, run by an event loop in its own thread."""

    release_namespace = "auth"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kmock", daemon=True)
        self._contexts: list[Any] = []
        self.server: Any = None

    def __enter__(self) -> KmockApiServer:
        self._thread.start()
        self.server = self._call(self._start())
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def url(self) -> str:
        return str(self.server.url).rstrip("/")

    def kubeconfig(self, role: str) -> Path:
        return write_kubeconfig(self.folder / f"kubeconfig-{role}", self.url, token=f"{role}-token")

    def ensure_namespace(self, name: str) -> None:
        pass  # kmock keeps objects of any namespace.

    def create(self, obj: dict[str, Any]) -> None:
        body = copy.deepcopy(obj)
        # kmock makes neither: the operator's patches need them (see tests/support/kmock_api.py).
        body["metadata"].setdefault("uid", str(uuid.uuid4()))
        body["metadata"].setdefault("resourceVersion", "1")
        status, text = self._call(self._request("POST", api_path(obj), body))
        assert status < 300, text

    def read(self, path: str) -> dict[str, Any] | None:
        status, text = self._call(self._request("GET", path, None))
        if status == 404:
            return None
        assert status < 300, text
        found: dict[str, Any] = json.loads(text)
        return found

    def before_creating_clients(self, timeout: float) -> None:
        # kmock replays every object at each watch start: create clients once the operator watches them.
        self._call(asyncio.wait_for(self._watched(CLIENTS), timeout), timeout=timeout + 5)

    # In the server's loop ---------------------------------------------------------------------------
    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _start(self) -> Any:
        emulator = kmocklib.KubernetesEmulator()
        server = await emulator.__aenter__()
        self._contexts.append(emulator)
        http = kmocklib.Server(server)
        await http.__aenter__()
        self._contexts.append(http)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            declare_resources(server)
        return server

    async def _stop(self) -> None:
        for context in reversed(self._contexts):
            await context.__aexit__(None, None, None)

    async def _request(self, method: str, path: str, body: Any) -> tuple[int, str]:
        async with self.server.request(method, path, json=body) as response:
            return response.status, await response.text()

    async def _watched(self, resource: Any) -> None:
        def watched() -> bool:
            return any(
                request.action == kmocklib.action.WATCH and request.resource == resource
                for request in list(self.server)
            )

        while True:  # kmock records requests but signals none.
            if watched():
                return
            await asyncio.sleep(0.1)


@dataclass(frozen=True)
class ControlPlaneAccess:
    """A real control plane with the CRDs and the chart's ServiceAccounts and RBAC applied."""

    admin_kubeconfig: Path
    #: The kubeconfig of a role's ("operator", "provider") ServiceAccount, bound to the chart's RBAC.
    role_kubeconfig: Callable[[str], Path]
    #: The namespace the chart's RBAC was rendered for.
    release_namespace: str


class ClusterApiServer:
    """A real API server, reached as an administrator through the admin kubeconfig."""

    def __init__(self, access: ControlPlaneAccess, folder: Path) -> None:
        self.access = access
        self.folder = folder
        self.release_namespace = access.release_namespace
        self.api = k8s_config.new_client_from_config(config_file=str(access.admin_kubeconfig))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.api.close()

    def kubeconfig(self, role: str) -> Path:
        config = yaml.safe_load(self.access.role_kubeconfig(role).read_text())
        for entry in config["clusters"]:
            cluster = entry["cluster"]
            if "certificate-authority" in cluster:
                ca = Path(cluster.pop("certificate-authority")).read_bytes()
                cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
        folder = self.folder / f"kubeconfig-{role}"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        path = folder / "config"
        path.write_text(json.dumps(config))
        path.chmod(0o644)
        return path

    def ensure_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        status, text = self._request("POST", "/api/v1/namespaces", body)
        assert status < 300 or status == 409, text

    def create(self, obj: dict[str, Any]) -> None:
        status, text = self._request("POST", api_path(obj), obj)
        assert status < 300, text

    def read(self, path: str) -> dict[str, Any] | None:
        status, text = self._request("GET", path, None)
        if status == 404:
            return None
        assert status < 300, text
        found: dict[str, Any] = json.loads(text)
        return found

    def before_creating_clients(self, timeout: float) -> None:
        # An Established CRD is routed a moment later: until then, 404.
        deadline = time.monotonic() + timeout
        while self._request("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}", None)[0] != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"the API server does not serve {PLURAL} after {timeout}s")
            time.sleep(0.1)

    def _request(self, method: str, path: str, body: Any) -> tuple[int, str]:
        try:
            method, url, headers, serialized, _ = self.api.param_serialize(
                method=method,
                resource_path=path,
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(method, url, header_params=headers, body=serialized)
        except ApiException as error:
            return int(error.status), str(error.body)
        return int(response.status), response.read().decode()
