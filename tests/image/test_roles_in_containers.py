"""The operator and the provider, each in its own container started the way the chart starts it (the
rendered pod's security context, volumes, environment and args), against an API server: the operator
makes the signing keys, the provider becomes ready with them, an OIDCClient created through the API is
reconciled into a Secret and then served, and SIGTERM ends both with status 0 within the grace period.

The API server here is kmock (no RBAC); each role reaches it through a kubeconfig of its own, mounted
read-only where a pod would have its ServiceAccount token. Under the host network the listening ports
are free ports instead of the chart's 8080 and 8081.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
import pytest
import yaml
from api_servers import ApiServer, KmockApiServer
from chart_pod import REPO, ChartPod, render
from container_engine import Engine

pytestmark = pytest.mark.image

T = TypeVar("T")
ISSUER = "https://login.example.com"
CLIENT_NAMESPACE = "apps"
KUBECONFIG_DIR = "/etc/kubeoidc/kube"
TIMEOUT = 30.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def eventually(what: str, probe: Callable[[], T | None], timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


@dataclass
class Deployment:
    """The two roles' containers, as the chart deploys them."""

    engine: Engine
    api: ApiServer
    pods: dict[str, ChartPod]
    containers: dict[str, str]
    provider_url: str

    def logs(self, role: str) -> str:
        return self.engine.logs(self.containers[role])

    def all_logs(self) -> str:
        return "\n".join(f"--- {role}:\n{self.logs(role)}" for role in self.containers)


def start_role(
    engine: Engine,
    image: str,
    api: ApiServer,
    pod: ChartPod,
    role: str,
    env: dict[str, str],
    secret_folders: dict[str, Path] | None = None,
) -> str:
    kubeconfig = api.kubeconfig(role)
    flags = [
        *pod.run_flags(engine.is_podman, secret_folders),
        f"--volume={kubeconfig.parent}:{KUBECONFIG_DIR}:ro",
        *(f"--env={name}={value}" for name, value in {**pod.env(), **env}.items()),
        f"--env=KUBECONFIG={KUBECONFIG_DIR}/{kubeconfig.name}",
    ]
    return engine.run(image, flags, pod.container["args"])


def secret_path(reference: str) -> str:
    namespace, name = reference.split("/")
    return f"/api/v1/namespaces/{namespace}/secrets/{name}"


def ready(url: str) -> bool | None:
    try:
        return httpx2.get(f"{url}/readyz", timeout=2).status_code == 200 or None
    except httpx2.TransportError:
        return None


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with KmockApiServer(tmp_path_factory.mktemp("kmock")) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(
    engine: Engine, image: str, api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    chart = render({"issuer": ISSUER})
    pods = {role: ChartPod.of(chart, role) for role in ("operator", "provider")}
    users = tmp_path_factory.mktemp("users")
    users.chmod(0o755)
    (users / "users.yaml").write_text("users: []\n")
    (users / "users.yaml").chmod(0o644)
    containers: dict[str, str] = {}
    port = free_port()
    deployment = Deployment(engine, api_server, pods, containers, f"http://127.0.0.1:{port}")
    try:
        containers["operator"] = start_role(
            engine,
            image,
            api_server,
            pods["operator"],
            "operator",
            {"KUBEOIDC_OPERATOR_LIVENESS_PORT": str(free_port())},
        )
        # The chart lets the operator make the signing keys; the provider needs them to start.
        keys = pods["provider"].env()["KUBEOIDC_PROVIDER_SIGNING_KEYS_SECRET"]
        eventually(
            f"the operator creates the signing keys Secret {keys}:\n{deployment.all_logs()}",
            lambda: api_server.read(secret_path(keys)),
        )
        containers["provider"] = start_role(
            engine,
            image,
            api_server,
            pods["provider"],
            "provider",
            {"KUBEOIDC_PROVIDER_HOST": "127.0.0.1", "KUBEOIDC_PROVIDER_PORT": str(port)},
            secret_folders={"users": users},
        )
        eventually(f"the provider is ready:\n{deployment.all_logs()}", lambda: ready(deployment.provider_url))
        yield deployment
    finally:
        for container in containers.values():
            engine.remove(container)


def test_an_oidcclient_created_through_the_api_is_reconciled_then_served(deployment: Deployment) -> None:
    client: dict[str, Any] = yaml.safe_load((REPO / "examples" / "machine-to-machine.yaml").read_text())
    client["metadata"]["namespace"] = CLIENT_NAMESPACE
    deployment.api.before_creating_clients(TIMEOUT)

    deployment.api.create(client)

    reference = f"{CLIENT_NAMESPACE}/{client['spec']['secretName']}"
    secret = eventually(
        f"the operator writes {reference}:\n{deployment.all_logs()}",
        lambda: deployment.api.read(secret_path(reference)),
    )
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    discovery = httpx2.get(f"{deployment.provider_url}/.well-known/openid-configuration", timeout=5).json()
    token_url = deployment.provider_url + urlsplit(discovery["token_endpoint"]).path
    form = {
        "grant_type": "client_credentials",
        "scope": "invoices:read",
        "client_id": data["client_id"],
        "client_secret": data["client_secret"],
    }

    def token() -> dict[str, Any] | None:
        response = httpx2.post(token_url, data=form, timeout=5)
        return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

    issued = eventually(f"the provider serves the client:\n{deployment.all_logs()}", token)
    assert issued["token_type"].lower() == "bearer"
    assert data["issuer"] == ISSUER
    assert discovery["issuer"] == ISSUER


def test_sigterm_ends_both_roles_with_status_0_within_the_grace_period(deployment: Deployment) -> None:
    # The last test of the module: it stops the deployment.
    for container in deployment.containers.values():
        deployment.engine.signal(container, "TERM")

    for role, container in deployment.containers.items():
        grace = deployment.pods[role].grace_seconds
        code, seconds = deployment.engine.wait_exit(container, timeout=grace + 5)
        logs = deployment.logs(role)
        assert code == 0, f"{role} exited {code}:\n{logs}"
        assert seconds < grace, role
        assert "Traceback" not in logs, logs
