"""kubeoidc installed on the test control plane as the chart installs it, its roles run as processes.

The chart is rendered with helm-python-sdk (as ``helm template`` would); from the render come the
ServiceAccounts, (Cluster)Roles and (Cluster)RoleBindings, applied as they are, and each Deployment's
environment, which configures ``kubeoidc operator`` and ``kubeoidc provider`` here. Only what a pod
provides differs: loopback ports, files in a temporary folder, and a kubeconfig holding a token of the
role's own ServiceAccount, minted through the TokenRequest API. Neither role ever runs as an admin.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from kubeoidc_contract import SIGNING_KEYS_KEY
from support.control_plane import Component, ControlPlane, tail, write_kubeconfig
from support.live import free_port
from support.provider import users_yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "kubeoidc"
CRDS_DIR = REPO / "crds"
RELEASE = "kubeoidc"
#: The release namespace: the roles' ServiceAccounts and the signing keys live here.
NAMESPACE = "kubeoidc"
#: The namespace of a second release, limited to a few namespaces (``watchNamespaces``).
SCOPED_NAMESPACE = "kubeoidc-scoped"
#: The namespace of a third release, with two operator replicas (kopf's peering).
FAILOVER_NAMESPACE = "kubeoidc-failover"
RBAC_KINDS = frozenset({"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})
#: What the release installs besides its workloads (whose processes run here instead): the RBAC, and
#: the peering object of several operator replicas.
INSTALLED_KINDS = RBAC_KINDS | {"ClusterKopfPeering"}
#: A role's token outlives any test session.
TOKEN_DURATION = "4h"
STARTUP_TIMEOUT = 60.0


def render_chart(
    values: Mapping[str, Any], *, release: str = RELEASE, namespace: str = NAMESPACE
) -> list[dict[str, Any]]:
    """Every object the chart renders with these values (``helm template``)."""
    with helm.Chart.load(CHART_DIR) as chart:
        files: dict[str, str] = chart.render(dict(values), name=release, namespace=namespace)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if path.endswith(".yaml"):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def _deployment(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (deployment,) = [
        obj
        for obj in objects
        if obj["kind"] == "Deployment"
        and obj["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return deployment


def deployment_env(objects: list[dict[str, Any]], component: str) -> dict[str, str]:
    """The environment the chart gives a role's container (literal values only)."""
    (container,) = _deployment(objects, component)["spec"]["template"]["spec"]["containers"]
    return {item["name"]: str(item["value"]) for item in container.get("env", []) if "value" in item}


def service_account_of(objects: list[dict[str, Any]], component: str) -> str:
    """The name of the ServiceAccount the chart runs a role as."""
    name: str = _deployment(objects, component)["spec"]["template"]["spec"]["serviceAccountName"]
    return name


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


#: The role processes started and not stopped, in this test session.
_RUNNING: list[RoleProcess] = []


def running(role: str | None = None) -> list[RoleProcess]:
    """The processes of ``role`` (of any role: None) running now."""
    return [process for process in _RUNNING if role is None or process.role == role]


@dataclass(eq=False)
class RoleProcess:
    """``kubeoidc operator`` or ``kubeoidc provider``, as its ServiceAccount, its output in a file."""

    role: str
    env: dict[str, str]
    log: Path
    #: The URL that answers 200 once the process is up.
    health_url: str
    component: Component = field(init=False)
    #: Where in the log the current run starts (a restart appends to the same file).
    run_offset: int = 0

    def __post_init__(self) -> None:
        executable = shutil.which("kubeoidc", path=str(Path(sys.executable).parent))
        command = [executable] if executable else [sys.executable, "-m", "kubeoidc.cli"]
        self.component = Component(self.role, [*command, self.role], self.log, env=self.env)

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start the process and wait until it answers its health URL; stop it again if it never does."""
        self.run_offset = self.log.stat().st_size if self.log.exists() else 0
        self.component.start()
        _RUNNING.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _get(self.health_url) == 200:
                return
            if not self.component.running:
                break
            time.sleep(0.1)
        failure = self.component.failure(
            "stopped while starting"
            if not self.component.running
            else f"was not healthy after {timeout:.0f} s"
        )
        self.stop()
        raise RuntimeError(failure)

    def stop(self) -> None:
        self.component.stop()
        if self in _RUNNING:
            _RUNNING.remove(self)

    def ensure_running(self) -> None:
        if not self.component.running:
            self.start()

    def restart(self) -> None:
        self.stop()
        self.start()

    def output(self, *, this_run: bool = False) -> str:
        """Everything the process printed (``this_run``: since its last start)."""
        try:
            data = self.log.read_bytes()
        except FileNotFoundError:
            return ""
        return data[self.run_offset if this_run else 0 :].decode(errors="replace")

    def tail(self) -> str:
        return tail(self.log, 60)


@dataclass
class Release:
    """The chart's CRDs and RBAC applied to a control plane, and the roles' kubeconfigs and settings."""

    plane: ControlPlane
    folder: Path
    issuer: str
    name: str = RELEASE
    namespace: str = NAMESPACE
    #: Chart values besides the issuer.
    values: Mapping[str, Any] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(init=False)
    kubeconfigs: dict[str, Path] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.objects = render_chart(
            {"issuer": self.issuer, **self.values}, release=self.name, namespace=self.namespace
        )

    def apply_crds(self) -> None:
        # Server-side: the OIDCClient CRD is too large for client-side apply's annotation.
        self.plane.kubectl("apply", "--server-side", "-f", str(CRDS_DIR))

    def wait_for_crds(self, timeout: float = STARTUP_TIMEOUT) -> None:
        self.plane.kubectl(
            "wait", "--for=condition=Established", f"--timeout={timeout:.0f}s", "-f", str(CRDS_DIR)
        )

    def set_up(self, serves_oidcclients: Callable[[], bool]) -> None:
        """The CRDs and the chart installed, and waited for until the API server serves OIDCClients."""
        self.apply_crds()
        self.install()
        self.wait_for_crds()
        # Established comes a moment before the API server routes the new resource: until then, 404.
        eventually(serves_oidcclients, "the API server to serve OIDCClients")

    def install(self) -> None:
        """The release namespace, then the chart's RBAC (and peering object), then a token per role."""
        self.plane.kubectl("create", "namespace", self.namespace)
        installed = [obj for obj in self.objects if obj["kind"] in INSTALLED_KINDS]
        self.plane.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(installed))
        for role in ("operator", "provider"):
            account = service_account_of(self.objects, role)
            token = self.plane.kubectl(
                "create", "token", account, "--namespace", self.namespace, f"--duration={TOKEN_DURATION}"
            ).strip()
            self.kubeconfigs[role] = write_kubeconfig(
                self.folder / f"{role}.kubeconfig", self.plane.server, self.plane.ca, {"token": token}
            )

    def service_account(self, role: str) -> str:
        """The role's user name as the API server sees it."""
        return f"system:serviceaccount:{self.namespace}:{service_account_of(self.objects, role)}"

    def _environment(self, role: str, settings: Mapping[str, str]) -> dict[str, str]:
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("KUBEOIDC_", "KUBERNETES_")) and name != "KUBECONFIG"
        }
        return {
            **inherited,
            **settings,
            "KUBECONFIG": str(self.kubeconfigs[role]),
            "PYTHONUNBUFFERED": "1",
        }

    def provider_settings(self) -> dict[str, str]:
        """The provider's settings as the chart renders them."""
        return deployment_env(self.objects, "provider")

    def operator(self, replica: str = "", **overrides: str) -> RoleProcess:
        """The operator, configured as the chart configures it; ``overrides`` are settings by field name.

        ``replica`` names one of several operators (its log file).
        """
        port = free_port()
        settings = deployment_env(self.objects, "operator")
        settings["KUBEOIDC_OPERATOR_LIVENESS_PORT"] = str(port)
        settings.update({f"KUBEOIDC_OPERATOR_{name.upper()}": value for name, value in overrides.items()})
        return RoleProcess(
            "operator",
            self._environment("operator", settings),
            self.folder / f"operator{'-' if replica else ''}{replica}.log",
            f"http://127.0.0.1:{port}/healthz",
        )

    def provider(self, port: int, users_yaml: str, **overrides: str) -> RoleProcess:
        """The provider, configured as the chart configures it, listening on 127.0.0.1:``port`` (and its
        health port on a free one: ``health_url``)."""
        users = self.folder / "users.yaml"
        users.write_text(users_yaml)
        settings = deployment_env(self.objects, "provider")
        health_port = free_port()
        settings.update(
            {
                "KUBEOIDC_PROVIDER_HOST": "127.0.0.1",
                "KUBEOIDC_PROVIDER_PORT": str(port),
                "KUBEOIDC_PROVIDER_HEALTH_PORT": str(health_port),
                "KUBEOIDC_PROVIDER_USERS_FILE": str(users),
                "KUBEOIDC_PROVIDER_STORAGE_URL": f"sqlite:///{self.folder / 'provider-state.db'}",
            }
        )
        settings.update({f"KUBEOIDC_PROVIDER_{name.upper()}": value for name, value in overrides.items()})
        return RoleProcess(
            "provider",
            self._environment("provider", settings),
            self.folder / "provider.log",
            f"http://127.0.0.1:{health_port}/readyz",
        )


def start_provider(
    release: Release, port: int, find_secret: Callable[[str, str], Any], **overrides: str
) -> RoleProcess:
    """The provider of a release, started once the operator has made the signing keys it reads;
    ``overrides`` are settings by field name."""
    namespace, name = release.provider_settings()["KUBEOIDC_PROVIDER_SIGNING_KEYS_SECRET"].split("/")
    eventually(
        lambda: SIGNING_KEYS_KEY in ((find_secret(namespace, name) or {}).get("data") or {}),
        f"the operator to create the signing keys Secret {namespace}/{name}",
    )
    process = release.provider(port, users_yaml(), **overrides)
    process.start()
    return process


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something true, and return that; fail after ``timeout`` seconds.

    The bound only stops a hang: nothing here asserts how fast the cluster is.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r})")
        time.sleep(interval)
