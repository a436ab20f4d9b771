"""People logging in to a real kube-apiserver with kubeoidc: the harness of the cluster-login tests.

A provider serving HTTPS (a CA made by the test) in this process, so its signing keys can be rotated
as the operator's Secret would; a control plane whose kube-apiserver is started with the
AuthenticationConfiguration ``kubeoidc cluster-config`` generates for it; kubeconfigs that present a
token, or run ``kubeoidc login`` as the exec plugin; and Chromium signing in where the plugin says.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher

from kubeoidc.cluster_config import authentication_configuration
from kubeoidc.local_tls import LocalTLS
from kubeoidc_contract import DEVICE_CODE_GRANT_TYPE
from kubeoidc_provider.context import Provider
from support.control_plane import ControlPlane
from support.node_rp import NODE_DIR
from support.provider import RegisteredClient, register

PASSWORD = "correct horse battery staple"
LOGIN_SCRIPT = NODE_DIR / "login-browser.mjs"
KUBEOIDC = Path(sys.executable).with_name("kubeoidc")
#: Bounds that only stop a hang.
COMMAND_TIMEOUT = 90.0
_URL = re.compile(r"https?://\S+")


def users_yaml() -> str:
    """alice and carol have verified emails, bob has not; alice and bob are in the group ``platform``."""
    hashed = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    users = [
        ("alice", "a1", "alice@example.com", True, ["platform"]),
        ("bob", "b2", "bob@example.com", False, ["platform"]),
        ("carol", "c3", "carol@example.com", True, ["finance"]),
    ]
    return yaml.safe_dump(
        {
            "users": [
                {
                    "username": name,
                    "id": f"{user_id}-{name}",
                    "email": email,
                    "emailVerified": verified,
                    "groups": groups,
                    "passwordHash": hashed,
                }
                for name, user_id, email, verified, groups in users
            ]
        }
    )


def register_clients(provider: Provider, loopback_port: int) -> tuple[RegisteredClient, RegisteredClient]:
    """The cluster login client (as ``examples/cluster-login.yaml``) and an unrelated web application."""
    login = register(
        provider.registry,
        "kubectl",
        public=True,
        redirect_uris=[
            "http://localhost:8000",
            "http://localhost:18000",
            f"http://localhost:{loopback_port}",
        ],
        grant_types=["authorization_code", "refresh_token", DEVICE_CODE_GRANT_TYPE],
        id_token_claims=["email", "email_verified", "preferred_username", "groups"],
    )
    other = register(provider.registry, "dashboard")
    return login, other


def start_control_plane(
    assets: Path, folder: Path, issuer: str, client_id: str, tls: LocalTLS
) -> ControlPlane:
    config = authentication_configuration(issuer=issuer, client_id=client_id, ca_pem=tls.ca_file.read_text())
    path = folder / "authentication-config.yaml"
    path.write_text(yaml.safe_dump(config))
    plane = ControlPlane(assets, logs=folder / "logs", apiserver_args=[f"--authentication-config={path}"])
    plane.start()
    return plane


@dataclass
class Kubectl:
    """kubectl as one person: a kubeconfig with a token, or with ``kubeoidc login`` as exec plugin."""

    plane: ControlPlane
    kubeconfig: Path

    @classmethod
    def with_user(cls, plane: ControlPlane, path: Path, user: Mapping[str, Any]) -> Kubectl:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "c", "cluster": {"server": plane.server, "certificate-authority": str(plane.ca)}}
            ],
            "users": [{"name": "u", "user": dict(user)}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return cls(plane, path)

    def command(self, *args: str) -> list[str]:
        return [str(self.plane.assets / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )

    def whoami(self) -> dict[str, Any] | None:
        """``kubectl auth whoami``'s user info, or None when the API server refused the credentials."""
        result = self.run("auth", "whoami", "-o", "json")
        if result.returncode != 0:
            return None
        user: dict[str, Any] = json.loads(result.stdout)["status"]["userInfo"]
        return user

    def refusal(self) -> str:
        """What kubectl says when the API server refuses the credentials (it says 401 as Unauthorized)."""
        result = self.run("auth", "whoami", "-o", "json")
        assert result.returncode != 0, f"the credentials were accepted: {result.stdout}"
        return result.stderr


def login_user(args: Sequence[str]) -> dict[str, Any]:
    """A kubeconfig user whose token comes from ``kubeoidc login`` with these arguments."""
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(KUBEOIDC),
            "args": ["login", *args],
            "interactiveMode": "Never",
        }
    }


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    prompted: bool


def run_signing_in(
    command: list[str], sign_in: Callable[[str], None], *, environment: Mapping[str, str] | None = None
) -> Finished:
    """Run a kubectl command; when the plugin prints a URL to open, ``sign_in`` is called with it."""
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(environment or {})},
        start_new_session=True,
    ) as process:
        lines: queue.Queue[str | None] = queue.Queue()
        stderr: list[str] = []

        def read() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        prompted = False
        deadline = time.monotonic() + COMMAND_TIMEOUT
        try:
            while time.monotonic() < deadline:
                try:
                    line = lines.get(timeout=1)
                except queue.Empty:
                    continue
                if line is None:
                    break
                stderr.append(line)
                found = _URL.search(line)
                # The device prompt's last URL is verification_uri_complete; the code flow's, the only one.
                if found and not prompted and ("or open" in line or "sign in at" in "".join(stderr[-2:])):
                    prompted = True
                    sign_in(found.group(0))
            stdout = process.stdout.read() if process.stdout else ""
            returncode = process.wait(timeout=max(deadline - time.monotonic(), 1))
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return Finished(returncode, stdout, "".join(stderr), prompted)


def chromium_signs_in(node: str, chromium: str, username: str) -> Callable[[str], dict[str, Any]]:
    """A person in Chromium finishing the sign-in at a URL: returns where the browser ended and its text."""

    def sign_in(url: str) -> dict[str, Any]:
        # Short: Chromium's singleton socket path must fit a Unix socket name.
        scratch = Path(tempfile.mkdtemp(prefix="kol-"))
        try:
            result = subprocess.run(
                [node, str(LOGIN_SCRIPT)],
                cwd=NODE_DIR,
                input=json.dumps(
                    {"executablePath": chromium, "url": url, "username": username, "password": PASSWORD}
                ),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                env={**os.environ, "TMPDIR": str(scratch)},
                check=False,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        lines = result.stdout.strip().splitlines()
        answer: dict[str, Any] = json.loads(lines[-1]) if lines else {"failed": result.stderr[-2000:]}
        if "failed" in answer:
            raise AssertionError(f"Chromium could not sign in: {answer['failed']}\n{result.stderr[-2000:]}")
        return answer

    return sign_in
