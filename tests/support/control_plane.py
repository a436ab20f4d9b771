"""A real Kubernetes control plane on loopback for the ``cluster`` tier: etcd, kube-apiserver and
kube-controller-manager, each a process of its own, with a PKI made here.

The binaries are found the envtest way: ``KUBEBUILDER_ASSETS`` names a folder holding ``etcd``,
``kube-apiserver``, ``kube-controller-manager`` and ``kubectl`` (controller-runtime's ``setup-envtest``
makes one for any Kubernetes version). Everything else lives in a temporary folder made at start and
removed at stop: the PKI (a CA, the API server's serving certificate for 127.0.0.1, client certificates
for an admin in ``system:masters`` and for the controller manager, the service-account key pair), etcd's
data, the kubeconfigs, and, unless another folder is given for them, an audit log and each process's
output.

Every port is a free loopback port. Each process runs in a process group of its own, and :meth:`stop`
ends exactly those groups (by id, never by name). When a component does not come up, the error shows
the tail of its output.

The API server runs RBAC, the OwnerReferencesPermissionEnforcement admission plugin (setting
``blockOwnerDeletion`` needs ``update`` on the owner's finalizers) and an audit log of every request
made by a ServiceAccount of the namespaces named at start, at the Metadata level (who, what, and the
response code): the tests read it to see the 403s and 409s the roles got.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from support.certificates import CertificateAuthority, cert_pem, key_pem
from support.live import free_port

ASSETS_VARIABLE = "KUBEBUILDER_ASSETS"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
MINIMUM_VERSION = (1, 30)
#: What to do when the binaries are missing: one line, shown once for the whole tier.
HOW_TO_GET_THE_BINARIES = (
    f"set {ASSETS_VARIABLE} to a folder of Kubernetes >= {MINIMUM_VERSION[0]}.{MINIMUM_VERSION[1]} test "
    "binaries (etcd, kube-apiserver, kube-controller-manager, kubectl), e.g. from setup-envtest"
)
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CIDR = "10.0.0.0/24"
#: Bounds that only stop a hang: the API server is ready in about 5 s here, etcd in well under one.
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class MissingAssets(Exception):
    """The control plane's binaries are not where ``KUBEBUILDER_ASSETS`` says; the message says why."""


def find_assets(environ: dict[str, str] | None = None) -> Path:
    """The folder of the four binaries, checked; raises :class:`MissingAssets` saying what is wrong."""
    environ = dict(os.environ) if environ is None else environ
    folder = environ.get(ASSETS_VARIABLE, "")
    if not folder:
        raise MissingAssets(f"{ASSETS_VARIABLE} is not set")
    path = Path(folder)
    missing = [name for name in BINARIES if not os.access(path / name, os.X_OK)]
    if missing:
        raise MissingAssets(f"{ASSETS_VARIABLE}={folder} has no executable {', '.join(missing)}")
    try:
        output = subprocess.run(
            [str(path / "kube-apiserver"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise MissingAssets(f"{path / 'kube-apiserver'} --version failed: {error}") from None
    found = re.search(r"v(\d+)\.(\d+)", output)
    if not found or (int(found[1]), int(found[2])) < MINIMUM_VERSION:
        raise MissingAssets(f"{ASSETS_VARIABLE}={folder} holds kube-apiserver {output.strip()!r}")
    return path


# --- PKI ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A certificate (or public key) and its private key, as PEM files."""

    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(key_pem(key))
    path.chmod(0o600)


class Pki:
    """A CA and the certificates signed by it, written to one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._ca = CertificateAuthority("kubeoidc-test-ca")
        self.ca = folder / "ca.crt"
        self.ca.write_bytes(self._ca.pem)

    def issue(
        self,
        stem: str,
        common_name: str,
        *,
        organization: str | None = None,
        server: bool = False,
        ips: Sequence[str] = (),
        dns: Sequence[str] = (),
    ) -> Pair:
        """A certificate for a client (``server=False``) or a server, signed by the CA."""
        cert, key = self._ca.issue(common_name, organization=organization, server=server, ips=ips, dns=dns)
        pair = Pair(self.folder / f"{stem}.crt", self.folder / f"{stem}.key")
        pair.cert.write_bytes(cert_pem(cert))
        _write_key(pair.key, key)
        return pair

    def service_account_keys(self, stem: str = "sa") -> Pair:
        """The key pair that signs ServiceAccount tokens (``cert`` holds the public key)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pair = Pair(self.folder / f"{stem}.pub", self.folder / f"{stem}.key")
        pair.cert.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        _write_key(pair.key, key)
        return pair


# --- kubeconfigs ----------------------------------------------------------------------------------


def write_kubeconfig(path: Path, server: str, ca: Path, user: dict[str, str], name: str = "test") -> Path:
    """A kubeconfig with one cluster, one user (``client-certificate``/``client-key`` or ``token``)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# --- processes ------------------------------------------------------------------------------------


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} was not written)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Component:
    """One process started here, in its own process group, its output in a file."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """End this process's group (SIGTERM, then SIGKILL after ``timeout``) and reap the process."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        # Whatever the process left in its group (none of ours does) goes with it.
        _signal_group(process.pid, signal.SIGKILL)
        self.process = None

    def failure(self, what: str) -> str:
        exit_code = self.process.poll() if self.process is not None else None
        state = f"exited with {exit_code}" if exit_code is not None else "still running"
        return f"{self.name} {what} ({state}); the end of {self.log}:\n{tail(self.log)}"


def _signal_group(pgid: int, signum: int) -> None:
    # The group was made for this process (start_new_session): its id is the process's id.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def wait_until(
    check: Callable[[], bool], component: Component, what: str, timeout: float = STARTUP_TIMEOUT
) -> None:
    """Poll ``check`` until true; fail with the component's output if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not component.running:
            raise RuntimeError(component.failure(f"stopped before it was {what}"))
        time.sleep(0.1)
    raise RuntimeError(component.failure(f"was not {what} after {timeout:.0f} s"))


def _https_get(url: str, context: ssl.SSLContext) -> str | None:
    try:
        with urllib.request.urlopen(url, context=context, timeout=3) as response:
            body: bytes = response.read()
            return body.decode()
    except (urllib.error.URLError, OSError):
        return None


def _http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            body: bytes = response.read()
            return body.decode()
    except (urllib.error.URLError, OSError):
        return None


# --- the control plane ----------------------------------------------------------------------------


def _audit_policy(namespaces: Sequence[str]) -> dict[str, Any]:
    groups = [f"system:serviceaccounts:{namespace}" for namespace in namespaces]
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "userGroups": groups}, {"level": "None"}],
    }


@dataclass
class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager on loopback; see the module's docstring.

    ``audited`` names the namespaces whose ServiceAccounts' requests are written to the audit log.
    """

    assets: Path
    audited: Sequence[str] = ()
    #: Where each component's output and the audit log go (kept); default: inside the data folder.
    logs: Path | None = None
    #: More kube-apiserver flags, e.g. ``--authentication-config=FILE`` for people logging in with OIDC.
    apiserver_args: Sequence[str] = ()
    root: Path = field(init=False)
    server: str = field(init=False, default="")
    ca: Path = field(init=False)
    admin_kubeconfig: Path = field(init=False)
    audit_log: Path = field(init=False)
    components: list[Component] = field(init=False, default_factory=list)
    #: The key kube-apiserver signs ServiceAccount tokens with now (see rotate_service_account_key).
    service_account_key: Pair = field(init=False)
    _pki: Pki = field(init=False)
    _admin_context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kubeoidc-control-plane-"))
        if self.logs is None:
            self.logs = self.root / "logs"

    def kubectl(self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None) -> str:
        """Run the assets' kubectl (as admin unless told otherwise); returns stdout, raises on failure.

        Each run has a discovery cache of its own (in the data folder, never the user's home): a cache
        from before a CRD was applied would hide its resource.
        """
        with tempfile.TemporaryDirectory(dir=self.root) as cache:
            result = subprocess.run(
                [
                    str(self.assets / "kubectl"),
                    f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
                    f"--cache-dir={cache}",
                    *args,
                ],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        pki = Pki(self.root / "pki")
        self.ca = pki.ca
        serving = pki.issue(
            "apiserver", "kube-apiserver", server=True, ips=["127.0.0.1"], dns=["localhost", "kubernetes"]
        )
        admin = pki.issue("admin", "kubeoidc-test-admin", organization="system:masters")
        controller = pki.issue("controller-manager", "system:kube-controller-manager")
        service_accounts = self.service_account_key = pki.service_account_keys()
        self._pki = pki
        assert self.logs is not None
        logs = self.logs
        logs.mkdir(parents=True, exist_ok=True)

        etcd_port, peer_port = free_port(), free_port()
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        etcd = self._component(
            "etcd",
            [
                str(self.assets / "etcd"),
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--listen-metrics-urls=",
                "--log-level=warn",
                # No fsync per write: the data is thrown away with the folder.
                "--unsafe-no-fsync",
            ],
            logs,
        )
        wait_until(lambda: '"health":"true"' in (_http_get(f"{etcd_url}/health") or ""), etcd, "healthy")

        audit_policy = self.root / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(_audit_policy(self.audited)))
        self.audit_log = logs / "audit.jsonl"
        api_port = free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        apiserver = self._component(
            "kube-apiserver",
            [
                str(self.assets / "kube-apiserver"),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--etcd-servers={etcd_url}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={pki.ca}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={service_accounts.cert}",
                f"--service-account-signing-key-file={service_accounts.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--endpoint-reconciler-type=none",
                "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                *self.apiserver_args,
            ],
            logs,
        )
        self.admin_kubeconfig = write_kubeconfig(
            self.root / "admin.kubeconfig",
            self.server,
            pki.ca,
            {"client-certificate": str(admin.cert), "client-key": str(admin.key)},
        )
        admin_context = ssl.create_default_context(cafile=str(pki.ca))
        admin_context.load_cert_chain(str(admin.cert), str(admin.key))
        self._admin_context = admin_context
        wait_until(lambda: _https_get(f"{self.server}/readyz", admin_context) == "ok", apiserver, "ready")

        controller_kubeconfig = write_kubeconfig(
            self.root / "controller-manager.kubeconfig",
            self.server,
            pki.ca,
            {"client-certificate": str(controller.cert), "client-key": str(controller.key)},
        )
        manager_port = free_port()
        manager = self._component(
            "kube-controller-manager",
            [
                str(self.assets / "kube-controller-manager"),
                f"--kubeconfig={controller_kubeconfig}",
                f"--authentication-kubeconfig={controller_kubeconfig}",
                f"--authorization-kubeconfig={controller_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={manager_port}",
                "--controllers=*",
                "--leader-elect=false",
                f"--root-ca-file={pki.ca}",
                f"--service-account-private-key-file={service_accounts.key}",
                "--use-service-account-credentials=true",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
            ],
            logs,
        )
        # Its serving certificate is self-signed: health is all that is asked of it.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        wait_until(
            lambda: _https_get(f"https://127.0.0.1:{manager_port}/healthz", insecure) == "ok",
            manager,
            "healthy",
        )

    def rotate_service_account_key(self) -> Pair:
        """Restart kube-apiserver signing ServiceAccount tokens with a new key, the previous keys still
        verifying (as a cluster operator rotates it); returns the new key pair."""
        apiserver = self._named("kube-apiserver")
        new = self._pki.service_account_keys(f"sa-{len(list(self._pki.folder.glob('sa*.key')))}")
        signing = "--service-account-signing-key-file="
        apiserver.command = [
            *(arg for arg in apiserver.command if not arg.startswith(signing)),
            f"--service-account-key-file={new.cert}",
            f"{signing}{new.key}",
        ]
        self.stop_apiserver()
        self.start_apiserver()
        self.service_account_key = new
        return new

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver alone (SIGTERM, as a node drain would): etcd and its data stay, and every
        client gets its connections refused until :meth:`start_apiserver`."""
        self._named("kube-apiserver").stop()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again, on the same port over the same etcd; returns once it is ready."""
        apiserver = self._named("kube-apiserver")
        apiserver.start()
        wait_until(
            lambda: _https_get(f"{self.server}/readyz", self._admin_context) == "ok", apiserver, "ready again"
        )

    def _named(self, name: str) -> Component:
        (component,) = [component for component in self.components if component.name == name]
        return component

    def _component(self, name: str, command: list[str], logs: Path) -> Component:
        component = Component(name, command, logs / f"{name}.log")
        self.components.append(component)
        component.start()
        return component

    def stop(self) -> None:
        """Stop what was started, last first, and remove the data folder."""
        for component in reversed(self.components):
            component.stop()
        self.components.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def output(self, name: str) -> str:
        """The tail of a component's output (``kube-apiserver``, ``etcd``, ``kube-controller-manager``)."""
        assert self.logs is not None
        return tail(self.logs / f"{name}.log")

    def audit_events(self, since: int = 0) -> Iterator[dict[str, Any]]:
        """Every audit event written so far (ServiceAccounts of the audited namespaces only), or those
        written after byte ``since`` of the log (its size at an earlier moment)."""
        try:
            with self.audit_log.open("rb") as log:
                log.seek(since)
                text = log.read()
        except FileNotFoundError:
            return
        # The last line may be half written: only whole lines count.
        for line in text.split(b"\n")[:-1]:
            if line.strip():
                event: dict[str, Any] = json.loads(line)
                yield event


def requested(event: dict[str, Any]) -> str:
    """What an audited request was about: ``resource[/subresource]``, or its URI when it names none."""
    ref = event.get("objectRef") or {}
    return "/".join(filter(None, (ref.get("resource"), ref.get("subresource")))) or str(event["requestURI"])
