"""The container image: its size (total, and what the project adds above the base image), the time from
`run` to the provider answering 200 on /readyz, and the time from `run` to the operator's first Ready
OIDCClient.

The image is built from this tree with the image tier's engine (podman, with buildah when present, or
docker; with BASE_IMAGE set, on that base). The provider runs as the chart runs it (the rendered pod's
security context, volumes and environment, signing keys from a mounted file as with
`signingKeys.managed=false`) against the kmock API server in this process; it is ready once its registry
has listed the clients. The operator runs the same way (the chart's default: it makes the signing keys)
with one OIDCClient already in the API, and is timed until that client's status says Ready=True. Each
round starts a fresh container; the time until `run -d` returns
(the engine creating and starting the container) is reported apart.

Usage: python bench/image.py [--rounds N] [--image TAG]   (prints a table, then `RESULT {json}`)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]
from kubeoidc_contract import GROUP, KIND, PLURAL, VERSION  # noqa: E402
from kubeoidc_provider.keys import generate_jwks  # noqa: E402
from support.api_servers import KmockApiServer  # noqa: E402
from support.chart_pod import ChartPod, render  # noqa: E402
from support.container_engine import Engine, find_engine  # noqa: E402

KUBECONFIG_DIR = "/etc/kubeoidc/kube"
READY_TIMEOUT = 60.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_image() -> str:
    if os.environ.get("BASE_IMAGE"):
        return os.environ["BASE_IMAGE"]
    match = re.search(r"^ARG BASE=(\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile declares ARG BASE=<image>"
    return match.group(1)


def image_bytes(engine: Engine, image: str) -> int:
    return int(engine.command("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def wait_ready(url: str, check: Any) -> float:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic()
        except httpx2.TransportError:
            pass
        check()
        time.sleep(0.01)
    raise RuntimeError(f"not ready within {READY_TIMEOUT}s")


def secret_folders(work: Path) -> dict[str, Path]:
    keys = work / "signing-keys"
    users = work / "users"
    for folder in (keys, users):
        folder.mkdir()
        folder.chmod(0o755)
    (keys / "jwks.json").write_text(json.dumps(generate_jwks("RS256")))
    (users / "users.yaml").write_text("users: []\n")
    for path in (keys / "jwks.json", users / "users.yaml"):
        path.chmod(0o644)
    return {"signing-keys": keys, "users": users}


def container_round(
    engine: Engine, image: str, pod: ChartPod, api: KmockApiServer, folders: Any
) -> tuple[float, float]:
    """Seconds from `run` to the container running (the engine's part), and to /readyz answering 200."""
    port, health_port = free_port(), free_port()
    kubeconfig = api.kubeconfig("provider")
    env = {
        **pod.env(),
        "KUBEOIDC_PROVIDER_HOST": "127.0.0.1",
        "KUBEOIDC_PROVIDER_PORT": str(port),
        "KUBEOIDC_PROVIDER_HEALTH_PORT": str(health_port),
        "KUBECONFIG": f"{KUBECONFIG_DIR}/{kubeconfig.name}",
    }
    flags = [
        *pod.run_flags(engine.is_podman, folders),
        f"--volume={kubeconfig.parent}:{KUBECONFIG_DIR}:ro",
        *(f"--env={name}={value}" for name, value in env.items()),
    ]
    started = time.monotonic()
    container = engine.run(image, flags, pod.container["args"])
    running = time.monotonic() - started

    def check() -> None:
        if not engine.running(container):
            raise RuntimeError("the provider container stopped:\n" + engine.logs(container))

    try:
        return running, wait_ready(f"http://127.0.0.1:{health_port}", check) - started
    finally:
        engine.remove(container)


def operator_round(engine: Engine, image: str, pod: ChartPod, api: KmockApiServer, index: int) -> float:
    """Seconds from `run` to the first OIDCClient, created before the container, reported Ready."""
    name = f"bench-{index}"
    client = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"grantTypes": ["client_credentials"], "scopes": ["invoices:read"]},
    }
    api.create(client)
    kubeconfig = api.kubeconfig("operator")
    env = {
        **pod.env(),
        "KUBEOIDC_OPERATOR_LIVENESS_PORT": str(free_port()),
        "KUBECONFIG": f"{KUBECONFIG_DIR}/{kubeconfig.name}",
    }
    flags = [
        *pod.run_flags(engine.is_podman, None),
        f"--volume={kubeconfig.parent}:{KUBECONFIG_DIR}:ro",
        *(f"--env={key}={value}" for key, value in env.items()),
    ]
    started = time.monotonic()
    container = engine.run(image, flags, pod.container["args"])
    path = f"/apis/{GROUP}/{VERSION}/namespaces/bench/{PLURAL}/{name}"
    try:
        deadline = started + READY_TIMEOUT
        while time.monotonic() < deadline:
            found = api.read(path) or {}
            conditions = (found.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                return time.monotonic() - started
            if not engine.running(container):
                raise RuntimeError("the operator container stopped:\n" + engine.logs(container))
            time.sleep(0.02)
        raise RuntimeError(f"no Ready client within {READY_TIMEOUT}s:\n" + engine.logs(container))
    finally:
        engine.remove(container)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image", help="an image already built (default: build this tree)")
    args = parser.parse_args()
    engine = find_engine()
    with tempfile.TemporaryDirectory(prefix="kubeoidc-bench-image-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        image = args.image
        built = False
        if not image:
            image = f"localhost/kubeoidc-bench:{uuid.uuid4().hex[:12]}"
            log(f"building {image} from {REPO}")
            started = time.monotonic()
            engine.build(REPO, image, work / "build.log")
            built = True
            log(f"built in {time.monotonic() - started:.0f}s (cached layers reused)")
        try:
            total = image_bytes(engine, image)
            base = image_bytes(engine, base_image())
            pod = ChartPod.of(
                render({"issuer": "https://login.example.com", "signingKeys": {"managed": False}}), "provider"
            )
            folders = secret_folders(work)
            operator_pod = ChartPod.of(render({"issuer": "https://login.example.com"}), "operator")
            container_s: list[float] = []
            engine_s: list[float] = []
            operator_s: list[float] = []
            with KmockApiServer(work) as api:
                for index in range(args.rounds):
                    running, ready = container_round(engine, image, pod, api, folders)
                    engine_s.append(running)
                    container_s.append(ready)
                    log(f"round {index + 1}: running after {running:.2f}s, ready after {ready:.2f}s")
                for index in range(args.rounds):
                    operator_s.append(operator_round(engine, image, operator_pod, api, index))
                    log(f"operator round {index + 1}: first client Ready after {operator_s[-1]:.2f}s")
        finally:
            if built:
                engine.command("rmi", image, check=False)
    load = os.getloadavg()
    result = {
        "image_mb": total / 1e6,
        "base_mb": base / 1e6,
        "added_mb": (total - base) / 1e6,
        "base": base_image(),
        "rounds": args.rounds,
        "container_ready_s": container_s,
        "engine_run_s": engine_s,
        "container_ready_median_s": statistics.median(container_s),
        "engine_run_median_s": statistics.median(engine_s),
        "operator_first_ready_s": operator_s,
        "operator_first_ready_median_s": statistics.median(operator_s),
        "loadavg": load,
    }
    print("| measure | value | goal |")
    print("|---|---|---|")
    print(f"| image, total | {total / 1e6:.0f} MB | |")
    print(f"| base image ({result['base']}) | {base / 1e6:.0f} MB | |")
    added_goal = "met" if (total - base) / 1e6 <= 150 else "MISSED"
    print(f"| added above the base | {(total - base) / 1e6:.0f} MB | <= 150 MB: {added_goal} |")
    ready = result["container_ready_median_s"]
    spread = f"{min(container_s):.2f}-{max(container_s):.2f}"
    print(
        f"| provider container: run to /readyz, median of {args.rounds} ({spread}) | {ready:.2f} s "
        f"| <= 3 s: {'met' if ready <= 3 else 'MISSED'} |"
    )
    print(f"| of which `run -d` returned (the engine), median | {result['engine_run_median_s']:.2f} s | |")
    first = result["operator_first_ready_median_s"]
    spread = f"{min(operator_s):.2f}-{max(operator_s):.2f}"
    print(f"| operator container: run to the first Ready OIDCClient, median ({spread}) | {first:.2f} s | |")
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
