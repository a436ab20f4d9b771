"""Operator scale: N OIDCClients created at once against the kmock API server, the time until all are Ready.

The kmock API server runs in this process (as in the operator's tests); the operator runs as its own
process, started the way a deployment starts it (``kubeoidc operator``, configured by environment and
a kubeconfig naming kmock's URL), so its RSS is its own. Clients are created only once the operator's
watches are open (kmock replays objects at each watch start). Prints one line ``RESULT {json}``:
count, ready, seconds (from the first create to the last Ready), the operator's CPU seconds over that
time, and its RSS (VmRSS) and peak RSS (VmHWM) in MiB at that moment.

Usage: python bench/operator_scale.py N [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kmock as kmocklib
from kmock._internal import dsl, rendering

from kubeoidc_contract import GROUP, KIND, PLURAL, READY_CONDITION, VERSION

# The API server is prepared as the tests prepare it (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.kmock_api import declare_resources

NAMESPACE = "apps"
CLIENTS = kmocklib.resource(GROUP, VERSION, PLURAL)
SECRETS = kmocklib.resource("", "v1", "secrets")
CREATE_CONCURRENCY = 20
_OPERATOR = "import sys; from kubeoidc.cli import main; sys.exit(main(sys.argv[1:]))"


def _is_member(view: Any, request: Any) -> bool:
    """Whether kmock's ``view`` sees ``request``: what ``request in view`` answers, without the scan."""
    kind = type(view)
    if kind is dsl.Filter:
        return bool(view.criteria(request)) and _is_member(view._source, request)
    if kind is dsl.Priority:
        return _is_member(view._source, request)
    if isinstance(view, dsl.Root) and type(view).__iter__ is dsl.Root.__iter__:
        # The request being served was appended last: look from the end.
        return any(seen is request for seen in reversed(view._requests))
    return any(seen is request for seen in view)


def _speed_up_kmock() -> None:
    """kmock matches each request against its whole request log (``request in view`` iterates every
    request ever served through each reaction's filters): the cost per request grows with the requests
    served, and a few thousand requests in, kmock, not the operator, is what the clock measures. The
    same answer, per request: a filter sees a request when its criteria accept it and its source sees it.
    """
    original = dsl.View.__contains__

    def contains(self: Any, item: Any) -> bool:
        if isinstance(item, rendering.Request):
            return _is_member(self, item)
        return bool(original(self, item))

    dsl.View.__contains__ = contains  # type: ignore[method-assign]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def memory_mib(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status if line.startswith("Vm")}
    return {"rss_mib": fields["VmRSS"], "peak_rss_mib": fields["VmHWM"]}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kubeconfig(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": url}}],
        "users": [{"name": "kmock", "user": {"token": "bench"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
        "current-context": "kmock",
    }


def _watching(server: Any, resource: Any) -> bool:
    return any(
        request.action == kmocklib.action.WATCH and request.resource == resource for request in list(server)
    )


def _is_ready(server: Any, name: str) -> bool:
    key = (CLIENTS, NAMESPACE, name)
    if key not in server.objects:
        return False
    stored = server.objects[key]
    if stored.deleted:
        return False
    conditions = (stored.raw.get("status") or {}).get("conditions") or []
    return any(c.get("type") == READY_CONDITION and c.get("status") == "True" for c in conditions)


async def _create(server: Any, name: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}", "resourceVersion": "1"},
        "spec": {"redirectURIs": [f"https://{name}.example.com/callback"]},
    }
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
    async with server.request("POST", path, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"creating {name}: {response.status} {await response.text()}")


async def measure(count: int, limit_seconds: float, workdir: Path) -> dict[str, Any]:
    async with kmocklib.KubernetesEmulator() as server, kmocklib.Server(server):
        declare_resources(server)
        config = workdir / "kubeconfig"
        config.write_text(json.dumps(kubeconfig(str(server.url).rstrip("/"))))
        env = {
            **os.environ,
            "KUBECONFIG": str(config),
            "KUBEOIDC_OPERATOR_ISSUER": "https://login.example.com",
            "KUBEOIDC_OPERATOR_LIVENESS_PORT": str(free_port()),
        }
        with (workdir / "operator.log").open("wb") as output:
            operator = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _OPERATOR,
                "--log-level=WARNING",
                "operator",
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while not (_watching(server, CLIENTS) and _watching(server, SECRETS)):
                if operator.returncode is not None or time.monotonic() > deadline:
                    log_text = (workdir / "operator.log").read_text()[-3000:]
                    raise RuntimeError(f"the operator did not open its watches:\n{log_text}")
                await asyncio.sleep(0.1)
            idle = memory_mib(operator.pid)
            idle_cpu = cpu_seconds(operator.pid)
            log(f"operator watching after {time.monotonic() - deadline + 60:.1f}s, {idle['rss_mib']:.1f} MiB")

            names = [f"app-{index:05d}" for index in range(count)]
            started = time.monotonic()
            limit = asyncio.Semaphore(CREATE_CONCURRENCY)

            async def create(name: str) -> None:
                async with limit:
                    await _create(server, name)

            await asyncio.gather(*(create(name) for name in names))
            created = time.monotonic() - started
            log(f"{count} OIDCClients created in {created:.1f}s")
            pending = set(names)
            while pending and time.monotonic() - started < limit_seconds:
                pending = {name for name in pending if not _is_ready(server, name)}
                if operator.returncode is not None:
                    raise RuntimeError(
                        "the operator exited:\n" + (workdir / "operator.log").read_text()[-3000:]
                    )
                await asyncio.sleep(0.05)
            seconds = time.monotonic() - started
            return {
                "count": count,
                "ready": count - len(pending),
                "seconds": seconds,
                "create_seconds": created,
                "idle_rss_mib": idle["rss_mib"],
                "operator_cpu_seconds": cpu_seconds(operator.pid) - idle_cpu,
                **memory_mib(operator.pid),
            }
        finally:
            if operator.returncode is None:
                operator.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(20):
                        await operator.wait()
                except TimeoutError:
                    operator.kill()
                    await operator.wait()


def main() -> None:
    _speed_up_kmock()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubeoidc-operator-scale-") as tmp:
        result = asyncio.run(measure(args.count, args.timeout, Path(tmp)))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
