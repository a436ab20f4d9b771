"""The operator and the provider, each in its own container started the way the chart starts it (the
rendered pod's security context, volumes, environment and args), against an API server: the operator
makes the signing keys, the provider becomes ready with them, OIDCClients created through the API are
reconciled into Secrets and then served (a client_credentials token; npm openid-client's code flow in
Chromium), and SIGTERM ends both with status 0 within the grace period.

Each scenario runs against two API servers: kmock (no RBAC), and a real control plane where each role
has its own ServiceAccount token and the chart's RBAC (skipped where the control plane's binaries are
missing). Each role reaches the API server through a kubeconfig of its own, mounted read-only where a
pod would have its ServiceAccount token. Under the host network the listening ports are free ports
instead of the chart's 8080 and 8081.

The SIGTERM test comes last in this file: it stops the deployment the others share.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
import pytest
import yaml

from support.api_servers import ApiServer, ClusterApiServer, KmockApiServer
from support.chart_pod import REPO, ChartPod, render
from support.container_engine import Engine
from support.node_rp import CHROMIUM
from support.provider import PASSWORD, users_yaml

pytestmark = pytest.mark.image

T = TypeVar("T")
CLIENT_NAMESPACE = "apps"
KUBECONFIG_DIR = "/etc/kubeoidc/kube"
TIMEOUT = 30.0
#: A traceback the process printed (kopf's log lines may quote one the API server sent, mid-line).
TRACEBACK = re.compile(r"^Traceback \(most recent call last\):", re.MULTILINE)


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
    #: The provider's URL, which is also the issuer the chart was rendered with.
    issuer: str
    stopped: bool = False

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


@pytest.fixture(scope="module", params=["kmock", "control-plane"])
def api_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    if request.param == "kmock":
        with KmockApiServer(tmp_path_factory.mktemp("kmock")) as kmock:
            yield kmock
        return
    cluster = ClusterApiServer(
        request.getfixturevalue("control_plane_access"), tmp_path_factory.mktemp("control-plane")
    )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def deployment(
    engine: Engine, image: str, api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    port, health_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port}"
    chart = render({"issuer": issuer}, namespace=api_server.release_namespace)
    pods = {role: ChartPod.of(chart, role) for role in ("operator", "provider")}
    users = tmp_path_factory.mktemp("users")
    users.chmod(0o755)
    (users / "users.yaml").write_text(users_yaml())
    (users / "users.yaml").chmod(0o644)
    containers: dict[str, str] = {}
    deployment = Deployment(engine, api_server, pods, containers, issuer)
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
            {
                "KUBEOIDC_PROVIDER_HOST": "127.0.0.1",
                "KUBEOIDC_PROVIDER_PORT": str(port),
                "KUBEOIDC_PROVIDER_HEALTH_PORT": str(health_port),
            },
            secret_folders={"users": users},
        )
        health = f"http://127.0.0.1:{health_port}"
        eventually(f"the provider is ready:\n{deployment.all_logs()}", lambda: ready(health))
        api_server.ensure_namespace(CLIENT_NAMESPACE)
        api_server.before_creating_clients(TIMEOUT)
        yield deployment
    finally:
        for container in containers.values():
            engine.remove(container)


def create_client(deployment: Deployment, client: dict[str, Any]) -> dict[str, str]:
    """Creates the OIDCClient through the API; returns its Secret's data once the operator wrote it."""
    assert not deployment.stopped, "the SIGTERM test stopped the deployment: it must come last"
    client["metadata"]["namespace"] = CLIENT_NAMESPACE
    deployment.api.create(client)
    name = client["spec"].get("secretName") or f"{client['metadata']['name']}-oidc"
    reference = f"{CLIENT_NAMESPACE}/{name}"
    secret = eventually(
        f"the operator writes {reference}:\n{deployment.all_logs()}",
        lambda: deployment.api.read(secret_path(reference)),
    )
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_an_oidcclient_created_through_the_api_is_reconciled_then_served(deployment: Deployment) -> None:
    client: dict[str, Any] = yaml.safe_load((REPO / "examples" / "machine-to-machine.yaml").read_text())

    data = create_client(deployment, client)

    discovery = httpx2.get(f"{deployment.issuer}/.well-known/openid-configuration", timeout=5).json()
    token_url = deployment.issuer + urlsplit(discovery["token_endpoint"]).path
    form = {
        "grant_type": "client_credentials",
        "scope": "invoices:read",
        "client_id": data["client_id"],
        "client_secret": data["client_secret"],
    }

    def token() -> dict[str, Any] | None:
        response = httpx2.post(token_url, data=form, timeout=5)
        return response.json() if response.status_code == 200 else None

    issued = eventually(f"the provider serves the client:\n{deployment.all_logs()}", token)
    assert issued["token_type"].lower() == "bearer"
    assert data["issuer"] == deployment.issuer
    assert discovery["issuer"] == deployment.issuer


WEB_APP = """\
apiVersion: kubeoidc.io/v1alpha1
kind: OIDCClient
metadata:
  name: notes
spec:
  displayName: Team Notes
  description: Where the team writes things down.
  redirectURIs: [https://notes.example.test/callback]
  postLogoutRedirectURIs: [https://notes.example.test/signed-out]
  grantTypes: [authorization_code, refresh_token]
  scopes: [openid, profile, email, groups, offline_access]
"""


@pytest.mark.node
@pytest.mark.browser
def test_openid_client_signs_a_user_in_through_the_code_flow_with_a_client_made_by_the_operator(
    deployment: Deployment, relying_party: Callable[..., dict[str, Any]], chromium: str, tmp_path: Path
) -> None:
    data = create_client(deployment, yaml.safe_load(WEB_APP))
    config = {
        "issuer": deployment.issuer,
        "clientId": data["client_id"],
        "clientSecret": data["client_secret"],
        "redirectUri": "https://notes.example.test/callback",
        "postLogoutRedirectUri": "https://notes.example.test/signed-out",
        "scope": "openid profile email groups offline_access",
        "username": "alice",
        "password": PASSWORD,
        "chromium": CHROMIUM,
        "screenshotDir": str(tmp_path),
    }
    # The provider serves the client once its watch delivers the Secret.
    eventually(
        f"the provider serves {data['client_id']}:\n{deployment.all_logs()}",
        lambda: served(deployment, data["client_id"], data["client_secret"]),
    )

    result = relying_party("code-flow", config)

    assert result["discovery"]["issuer"] == deployment.issuer
    assert result["pages"]["login"]["clientName"] == "Team Notes"
    assert result["token"]["idToken"]["aud"] == data["client_id"]
    assert result["userinfo"]["preferred_username"] == "alice"
    assert result["refresh"]["idToken"]["sub"] == result["token"]["idToken"]["sub"]


def served(deployment: Deployment, client_id: str, client_secret: str) -> bool | None:
    """Whether the provider knows the client: its revocation endpoint authenticates it (RFC 7009 answers
    200 for any token, 401 for an unknown client)."""
    discovery = httpx2.get(f"{deployment.issuer}/.well-known/openid-configuration", timeout=5).json()
    url = deployment.issuer + urlsplit(discovery["revocation_endpoint"]).path
    response = httpx2.post(url, data={"token": "unknown"}, auth=(client_id, client_secret), timeout=5)
    return response.status_code == 200 or None


def test_sigterm_ends_both_roles_with_status_0_within_the_grace_period(deployment: Deployment) -> None:
    # The last test of the module: it stops the deployment.
    deployment.stopped = True
    for container in deployment.containers.values():
        deployment.engine.signal(container, "TERM")

    for role, container in deployment.containers.items():
        grace = deployment.pods[role].grace_seconds
        code, seconds = deployment.engine.wait_exit(container, timeout=grace + 5)
        logs = deployment.logs(role)
        assert code == 0, f"{role} exited {code}:\n{logs}"
        assert seconds < grace, role
        assert not TRACEBACK.search(logs), logs
