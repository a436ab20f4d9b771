"""The image, built from this tree, runs the way the chart runs it: as uid and gid 65532, on a read-only
root filesystem with every capability dropped and no privilege escalation, writing only where the chart
mounts a writable volume; `kubeoidc dev` in it serves OpenID Connect; SIGTERM ends it cleanly in time.

The engine's flags come from the rendered chart (chart_pod.py), so a change to the chart's security
context or volumes changes what these tests run.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from packaging.markers import Marker

from support.chart_pod import REPO, ChartPod, render
from support.container_engine import TEST_REVISION, Engine

pytestmark = pytest.mark.image

ROLES = ("operator", "provider")
#: Where the dev-mode container reads the example manifests (a read-only bind mount).
EXAMPLES = "/etc/kubeoidc/examples"
STARTUP_TIMEOUT = 30.0
#: A traceback the process printed.
TRACEBACK = re.compile(r"^Traceback \(most recent call last\):", re.MULTILINE)

#: Run in the container: the process's identity, capabilities and privileges (/proc/self/status), and
#: every directory it can write to (the topmost of each writable tree; /proc, /sys and /dev aside).
PROBE = """
import json, os
status = {}
for line in open("/proc/self/status"):
    key, _, value = line.partition(":")
    status[key] = value.split()
writable = []
for root, dirs, _ in os.walk("/"):
    if root == "/":
        dirs[:] = [name for name in dirs if name not in ("proc", "sys", "dev")]
    if os.access(root, os.W_OK):
        writable.append(root)
        dirs[:] = []
print(json.dumps({"status": status, "writable": sorted(writable)}))
"""


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    return render({"issuer": "https://login.example.com"})


@pytest.fixture(scope="module", params=ROLES)
def role_pod(request: pytest.FixtureRequest, chart: list[dict[str, Any]]) -> ChartPod:
    return ChartPod.of(chart, request.param)


@pytest.fixture(scope="module")
def provider_pod(chart: list[dict[str, Any]]) -> ChartPod:
    return ChartPod.of(chart, "provider")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DevContainer:
    engine: Engine
    id: str
    issuer: str

    def logs(self) -> str:
        return self.engine.logs(self.id)

    def card(self, name: str) -> dict[str, str]:
        """The client ID and secret `kubeoidc dev` printed for the OIDCClient ``name``."""
        lines = self.logs().splitlines()
        index = max(i for i, line in enumerate(lines) if line.startswith(f"OIDCClient default/{name} "))
        client_id = re.search(r"client_id:\s+(\S+)", lines[index + 1])
        client_secret = re.search(r"client_secret:\s+(\S+)", lines[index + 2])
        assert client_id, lines[index : index + 4]
        assert client_secret, lines[index : index + 4]
        return {"client_id": client_id.group(1), "client_secret": client_secret.group(1)}


def start_dev(engine: Engine, image: str, pod: ChartPod) -> DevContainer:
    """`kubeoidc dev` on the repository's examples, in the provider pod's lockdown, its state on the
    chart's state volume; returns once /readyz answers 200."""
    (state,) = pod.writable_paths() - {"/tmp"}
    port, health_port = free_port(), free_port()
    flags = [*pod.run_flags(engine.is_podman), f"--volume={REPO / 'examples'}:{EXAMPLES}:ro"]
    command = ["dev", EXAMPLES, "--state", state, "--port", str(port), "--health-port", str(health_port)]
    container = engine.run(image, flags, command)
    dev = DevContainer(engine, container, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            if httpx2.get(f"http://127.0.0.1:{health_port}/readyz", timeout=2).status_code == 200:
                return dev
        except httpx2.TransportError:
            pass
        if not engine.running(container) or time.monotonic() > deadline:
            raise AssertionError(f"kubeoidc dev did not become ready:\n{dev.logs()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def dev(engine: Engine, image: str, provider_pod: ChartPod) -> Iterator[DevContainer]:
    container = start_dev(engine, image, provider_pod)
    yield container
    engine.remove(container.id)


def test_the_run_flags_are_the_charts_security_context_and_writable_volumes(role_pod: ChartPod) -> None:
    flags = role_pod.run_flags(engine_is_podman=True)

    assert {"--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL"} <= set(flags)
    assert "--security-opt=no-new-privileges" in flags
    assert "--user=65532:65532" in flags
    assert "--group-add=65532" in flags
    tmpfs_paths = {
        flag.removeprefix("--tmpfs=").split(":")[0] for flag in flags if flag.startswith("--tmpfs=")
    }
    assert tmpfs_paths == role_pod.writable_paths()
    assert "/tmp" in tmpfs_paths


def test_the_image_runs_as_the_charts_user_and_carries_its_labels(
    engine: Engine, image: str, role_pod: ChartPod, project_version: str
) -> None:
    config = engine.image_config(image)
    labels = json.loads(config["labels"])

    uid, gid = role_pod.user
    assert config["user"] == f"{uid}:{gid}"
    assert json.loads(config["entrypoint"]) == ["kubeoidc"]
    assert labels["org.opencontainers.image.version"] == project_version
    assert labels["org.opencontainers.image.revision"] == TEST_REVISION
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_a_container_run_like_the_chart_has_no_capability_no_privilege_and_writes_only_to_its_volumes(
    engine: Engine, image: str, role_pod: ChartPod
) -> None:
    flags = [*role_pod.run_flags(engine.is_podman), "--entrypoint", "python"]

    facts = json.loads(engine.run_to_end(image, flags, ["-c", PROBE]))

    status = facts["status"]
    uid, gid = role_pod.user
    assert status["Uid"] == [str(uid)] * 4
    assert status["Gid"] == [str(gid)] * 4
    assert str(role_pod.fs_group) in status["Groups"]
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capabilities][0], 16) == 0, capabilities
    assert status["NoNewPrivs"] == ["1"]
    assert status["Seccomp"] == ["2"], "the runtime's default seccomp filter applies"
    assert set(facts["writable"]) == role_pod.writable_paths()


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_runtime(python_full_version: str) -> dict[str, str]:
    """requirements.txt: normalized name -> version, for the image's Python on Linux (the lock is
    universal: a line's environment marker says where it applies)."""
    environment = {
        "python_full_version": python_full_version,
        "python_version": ".".join(python_full_version.split(".")[:2]),
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
    }
    locked: dict[str, str] = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if not re.match(r"^[A-Za-z0-9]", line):
            continue
        requirement, _, marker = line.rstrip(" \\").partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        name, _, version = requirement.partition("==")
        locked[normalized(name)] = version.strip()
    return locked


@pytest.fixture(scope="module")
def image_python(engine: Engine, image: str) -> str:
    """The version of the image's Python, which the lock's markers are read for."""
    command = ["-c", "import platform; print(platform.python_version())"]
    return engine.run_to_end(image, ["--entrypoint", "python"], command).strip()


#: Run in the container (as root, to see every folder): the environment's distributions, and any wheel or
#: pip cache where a build would leave one (the base image's own files aside).
INVENTORY = """
import json, os, sys
from importlib import metadata
found = {dist.metadata["Name"]: dist.version for dist in metadata.distributions(path=sys.path)}
leftovers = []
for top in ("/opt", "/root", "/home", "/tmp", "/var/cache", "/usr/share/doc/kubeoidc"):
    for root, dirs, files in os.walk(top):
        leftovers += [os.path.join(root, name) for name in files if name.endswith(".whl")]
        leftovers += [os.path.join(root, name) for name in dirs if name == "pip" and root.endswith(".cache")]
print(json.dumps({"environment": found, "prefix": sys.prefix, "leftovers": leftovers}))
"""


def test_the_environment_holds_exactly_the_lock_and_the_project_and_no_wheel_or_pip_cache(
    engine: Engine, image: str, project_version: str, image_python: str
) -> None:
    facts = json.loads(engine.run_to_end(image, ["--user=0", "--entrypoint", "python"], ["-c", INVENTORY]))

    assert facts["prefix"] == "/opt/kubeoidc"
    environment = {normalized(name): version for name, version in facts["environment"].items()}
    # No pip, setuptools or wheel: the environment was made without pip and built from outside.
    assert environment == {**locked_runtime(image_python), "kubeoidc": project_version}
    assert facts["leftovers"] == []


def test_the_sbom_lists_every_locked_runtime_package(engine: Engine, image: str, image_python: str) -> None:
    sbom = json.loads(
        engine.run_to_end(image, ["--entrypoint", "cat"], ["/usr/share/doc/kubeoidc/sbom.cdx.json"])
    )
    locked = locked_runtime(image_python)

    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["metadata"]["component"]["name"] == "kubeoidc"
    listed = {normalized(c["name"]): c["version"] for c in sbom["components"]}
    assert listed == locked


def test_dev_mode_in_the_container_serves_discovery_jwks_and_a_client_credentials_token(
    dev: DevContainer,
) -> None:
    discovery = httpx2.get(f"{dev.issuer}/.well-known/openid-configuration", timeout=5).json()
    jwks = httpx2.get(discovery["jwks_uri"], timeout=5).json()
    # examples/machine-to-machine.yaml: client_credentials, client_secret_post, invoices:* scopes.
    card = dev.card("billing-sync")
    response = httpx2.post(
        discovery["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "invoices:read", **card},
        timeout=5,
    )

    assert discovery["issuer"] == dev.issuer
    assert jwks["keys"]
    assert all("d" not in key for key in jwks["keys"]), "the JWKS publishes public keys only"
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    claims = jwt.decode(body["access_token"], KeySet.import_key_set(jwks)).claims
    assert claims["iss"] == dev.issuer
    assert claims["client_id"] == card["client_id"]
    assert claims["scope"] == "invoices:read"
    assert not TRACEBACK.search(dev.logs())


def test_sigterm_ends_dev_mode_with_status_0_within_the_grace_period(
    engine: Engine, image: str, provider_pod: ChartPod
) -> None:
    dev = start_dev(engine, image, provider_pod)

    engine.signal(dev.id, "TERM")
    code, seconds = engine.wait_exit(dev.id, timeout=provider_pod.grace_seconds + 5)

    logs = dev.logs()
    engine.remove(dev.id)
    assert code == 0, logs
    assert seconds < provider_pod.grace_seconds
    assert not TRACEBACK.search(logs)
