"""Operator scale on a real API server: N OIDCClients created at once, the time until every one is Ready.

The control plane is the cluster test tier's (``tests/support/control_plane.py``: etcd, kube-apiserver
and kube-controller-manager from ``KUBEBUILDER_ASSETS``), with the CRDs and the chart's RBAC installed as
that tier installs them (``support.release``). The operator runs as its own process, configured as the
chart configures it, with its ServiceAccount's token: its RSS and CPU time are its own, and the API
server enforces its RBAC. For each count asked for, the bench creates that many OIDCClients in a fresh
namespace, ``CREATE_CONCURRENCY`` requests in flight (as an administrator), and follows them with a watch
until every one is ``Ready=True``. The API server's audit log (the operator's requests, at the Metadata
level) then gives the operator's requests by verb and resource, counted once it has gone quiet (the
echoes of its own writes included).

Prints one line ``RESULT {json}`` per count: count, ready, seconds (from the first create to the last
Ready), create_seconds, the operator's CPU seconds over that time (and this bench's own, the creates and
the watch that follows them: it shares the machine), its RSS and peak RSS (VmHWM) in MiB,
its requests by ``verb resource[/subresource]``, its writes per client, the CPU seconds of each control
plane process over the same time, and the load average.

With ``--without-operator``, the operator is not started: for each count, the bench creates that many
OIDCClients, gives each the status the operator would write then a change of one status field, does the
same with a copy of the
OIDCClient CRD without its CEL rules (another group), creates as many ConfigMaps holding the same strings
and as many Secrets as the operator writes, one kind after another, and prints ``API_SERVER {json}``:
the control plane's CPU milliseconds per object for each step. That is what each of a client's requests
costs the API server, apart from the operator.

Usage: KUBEBUILDER_ASSETS=DIR python bench/operator_scale.py N [N ...] [--timeout S] [--without-operator]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from kubeoidc_contract import API_VERSION, GROUP, KIND, PLURAL, READY_CONDITION, VERSION
from kubeoidc_contract.cluster_access import from_kubeconfig
from kubeoidc_operator.reconcile import Plan, plan
from kubeoidc_operator.rotation import RandomCredentials

# The control plane and the release are the cluster tier's own (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.admin import Admin
from support.control_plane import ControlPlane, find_assets, requested
from support.release import CRDS_DIR, NAMESPACE, Release, RoleProcess

#: Create requests in flight at once.
CREATE_CONCURRENCY = 32
#: The operator is quiet (its requests counted) once the audit log has not grown for this long.
QUIET_SECONDS = 3.0
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
#: The group of the copy of the OIDCClient CRD without CEL rules (``--without-operator``).
UNRULED_GROUP = f"unruled.{GROUP}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status if line.startswith("Vm")}
    return {"rss_mib": fields["VmRSS"], "peak_rss_mib": fields["VmHWM"]}


def control_plane_cpu(plane: ControlPlane) -> dict[str, float]:
    """CPU seconds each control plane process has used, by name."""
    return {c.name: cpu_seconds(c.process.pid) for c in plane.components if c.process is not None}


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 2) for name in after if name in before}


def oidcclient(namespace: str, name: str, api_version: str = API_VERSION) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"displayName": name, "redirectURIs": [f"https://{name}.example.com/callback"]},
    }


def configmap(namespace: str, name: str) -> dict[str, Any]:
    """A ConfigMap holding the same strings as :func:`oidcclient`'s spec."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"displayName": name, "redirectURIs": f"https://{name}.example.com/callback"},
    }


def without_rules(node: Any) -> Any:
    """The schema with every CEL rule (``x-kubernetes-validations``) left out."""
    if isinstance(node, dict):
        return {k: without_rules(v) for k, v in node.items() if k != "x-kubernetes-validations"}
    if isinstance(node, list):
        return [without_rules(item) for item in node]
    return node


def unruled_crd() -> dict[str, Any]:
    """The OIDCClient CRD, in group :data:`UNRULED_GROUP`, without its CEL rules."""
    crd: dict[str, Any] = yaml.safe_load((CRDS_DIR / "oidcclient.yaml").read_text())
    crd = without_rules(crd)
    crd["metadata"] = {"name": f"{PLURAL}.{UNRULED_GROUP}"}
    crd["spec"]["group"] = UNRULED_GROUP
    return crd


def is_ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == READY_CONDITION and c.get("status") == "True" for c in conditions)


def operator_requests(plane: ControlPlane, user: str, namespace: str, offset: int) -> Counter[str]:
    """The operator's requests about ``namespace``, and its cluster-wide ones (a list of every client),
    in the audit log after byte ``offset``, by ``verb resource[/sub]`` (its signing keys and peering
    live in other namespaces: not a client's cost)."""
    return Counter(
        f"{event['verb']} {requested(event)}"
        for event in plane.audit_events(since=offset)
        if event.get("user", {}).get("username") == user
        and event.get("stage") == "ResponseComplete"
        and (event.get("objectRef") or {}).get("namespace", namespace) == namespace
    )


def quiet_requests(
    plane: ControlPlane, user: str, namespace: str, offset: int, limit: float = 60.0
) -> Counter[str]:
    """The operator's requests once it has stopped making any for :data:`QUIET_SECONDS`."""
    deadline = time.monotonic() + limit
    last = operator_requests(plane, user, namespace, offset)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = operator_requests(plane, user, namespace, offset)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            break
    return last


class Cluster:
    """An administrator's asynchronous access to the API server: create clients, follow them to Ready.

    On aiohttp (its HTTP parser in C): the bench shares the machine's CPU with the control plane and
    the operator, so its own requests should cost it as little as they can.
    """

    def __init__(self, plane: ControlPlane) -> None:
        access = from_kubeconfig(plane.admin_kubeconfig)
        self.http = aiohttp.ClientSession(
            base_url=access.server,
            connector=aiohttp.TCPConnector(
                ssl=access.ssl_context if access.ssl_context is not None else True,
                limit=CREATE_CONCURRENCY + 2,
            ),
            timeout=aiohttp.ClientTimeout(sock_connect=10.0, sock_read=120.0),
            trust_env=False,
        )

    def collection(self, namespace: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"

    async def create(
        self,
        namespace: str,
        names: list[str],
        collection: str | None = None,
        make: Callable[[str, str], dict[str, Any]] = oidcclient,
    ) -> None:
        path = collection or self.collection(namespace)
        await self._each(
            names,
            "creating",
            lambda name: self.http.post(
                path, data=json.dumps(make(namespace, name)), headers={"Content-Type": "application/json"}
            ),
        )

    async def patch_status(
        self, collection: str, names: list[str], status: Callable[[str], dict[str, Any]]
    ) -> None:
        """Merge-patch each object's status subresource, as the operator does."""
        await self._each(
            names,
            "patching",
            lambda name: self.http.patch(
                f"{collection}/{name}/status",
                data=json.dumps({"status": status(name)}),
                headers={"Content-Type": "application/merge-patch+json"},
            ),
        )

    async def _each(
        self,
        names: list[str],
        doing: str,
        send: Callable[[str], AbstractAsyncContextManager[aiohttp.ClientResponse]],
    ) -> None:
        """``send`` for each name, ``CREATE_CONCURRENCY`` at once; any answer but 2xx ends the run."""
        pending = iter(names)

        async def worker() -> None:
            for name in pending:
                async with send(name) as response:
                    body = await response.read()
                    if response.status >= 300:
                        raise RuntimeError(f"{doing} {name}: {response.status} {body[:500]!r}")

        await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))

    async def follow_until_ready(self, namespace: str, count: int, deadline: float) -> set[str]:
        """Names of the namespace's clients seen Ready, once all ``count`` are or at the deadline."""
        ready: set[str] = set()
        async with self.http.get(self.collection(namespace)) as listed:
            version = (await listed.json())["metadata"]["resourceVersion"]
        while len(ready) < count and time.monotonic() < deadline:
            params = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true"}
            params["timeoutSeconds"] = str(max(1, int(deadline - time.monotonic())))
            with contextlib.suppress(aiohttp.ClientError):
                async with self.http.get(self.collection(namespace), params=params) as events:
                    async for line in events.content:
                        event = json.loads(line)
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            raise RuntimeError(f"the watch failed: {obj}")
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED") and is_ready(obj):
                            ready.add(obj["metadata"]["name"])
                            if len(ready) == count:
                                break
        return ready


async def measure_one(
    plane: ControlPlane, admin: Admin, operator: RoleProcess, user: str, count: int, limit: float
) -> dict[str, Any]:
    namespace = f"scale-{count}-{int(time.time())}"
    admin.create_namespace(namespace)
    assert operator.component.process is not None
    pid = operator.component.process.pid
    cluster = Cluster(plane)
    try:
        names = [f"app-{index:05d}" for index in range(count)]
        offset = plane.audit_log.stat().st_size
        cpu_before = cpu_seconds(pid)
        plane_before = control_plane_cpu(plane)
        load_before = os.getloadavg()
        bench_before = time.process_time()
        started = time.monotonic()
        follow = asyncio.create_task(cluster.follow_until_ready(namespace, count, started + limit))
        await asyncio.sleep(0.2)  # the watch is open before the first create
        await cluster.create(namespace, names)
        created = time.monotonic() - started
        log(f"{count} OIDCClients created in {created:.1f}s")
        ready = await follow
        seconds = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_before
        bench_cpu = time.process_time() - bench_before
        plane_cpu = cpu_spent(plane_before, control_plane_cpu(plane))
        memory = memory_mib(pid)
        log(f"{len(ready)} of {count} Ready after {seconds:.1f}s; waiting for the operator to go quiet")
    finally:
        await cluster.http.close()
    requests = await asyncio.to_thread(quiet_requests, plane, user, namespace, offset)
    writes = sum(n for key, n in requests.items() if key.split()[0] in WRITE_VERBS)
    return {
        "count": count,
        "ready": len(ready),
        "seconds": seconds,
        "create_seconds": created,
        "operator_cpu_seconds": cpu,
        "bench_cpu_seconds": bench_cpu,
        **memory,
        "requests": dict(sorted(requests.items())),
        "requests_per_client": round(sum(requests.values()) / count, 2),
        "writes_per_client": round(writes / count, 2),
        "control_plane_cpu_seconds": plane_cpu,
        "load_before": [round(value, 2) for value in load_before],
        "load_after": [round(value, 2) for value in os.getloadavg()],
    }


def operator_plan(namespace: str, name: str) -> Plan:
    """What the operator writes for a new client: its Secret and its status (the operator's own plan)."""
    client = oidcclient(namespace, name)
    client["metadata"].update(uid=str(uuid.uuid4()), generation=1)
    return plan(
        client,
        current=None,
        issuer="https://login.example.com",
        now=datetime.datetime.now(datetime.UTC),
        credentials=RandomCredentials(),
    )


async def measure_api_server(plane: ControlPlane, admin: Admin, count: int) -> dict[str, Any]:
    """The control plane's CPU per object, for ``count`` OIDCClients created then given the status the
    operator writes, as many of the copy without CEL rules, as many ConfigMaps and as many Secrets as the
    operator writes, one kind after another (no operator running)."""
    stamp = int(time.time())

    def operator_secret(namespace: str, name: str) -> dict[str, Any]:
        secret = operator_plan(namespace, name.removesuffix("-oidc")).secret
        assert secret is not None
        return secret

    def operator_status(name: str) -> dict[str, Any]:
        return operator_plan("status", name).status

    Make = Callable[[str, str], dict[str, Any]]
    kinds: dict[str, tuple[Callable[[str], str], Make, bool]] = {
        "oidcclients": (lambda ns: f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}", oidcclient, True),
        "oidcclients_without_cel_rules": (
            lambda ns: f"/apis/{UNRULED_GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}",
            lambda ns, name: oidcclient(ns, name, f"{UNRULED_GROUP}/{VERSION}"),
            True,
        ),
        "configmaps": (lambda ns: f"/api/v1/namespaces/{ns}/configmaps", configmap, False),
        "operator_secrets": (lambda ns: f"/api/v1/namespaces/{ns}/secrets", operator_secret, False),
    }
    result: dict[str, Any] = {"count": count, "load_before": [round(v, 2) for v in os.getloadavg()]}
    cluster = Cluster(plane)

    async def spent(step: Awaitable[None]) -> dict[str, float]:
        before = control_plane_cpu(plane)
        await step
        await asyncio.sleep(QUIET_SECONDS)  # what follows the requests (watch events, audit) is theirs
        return {
            name: round(1000 * cpu / count, 2)
            for name, cpu in cpu_spent(before, control_plane_cpu(plane)).items()
        }

    try:
        for kind, (collection, make, has_status) in kinds.items():
            namespace = f"api-{kind.replace('_', '-')}-{count}-{stamp}"
            admin.create_namespace(namespace)
            suffix = "-oidc" if kind == "operator_secrets" else ""
            names = [f"app-{index:05d}{suffix}" for index in range(count)]
            result[kind] = {
                "create_cpu_ms": await spent(cluster.create(namespace, names, collection(namespace), make))
            }
            if has_status:
                patches = cluster.patch_status(collection(namespace), names, operator_status)
                result[kind]["status_patch_cpu_ms"] = await spent(patches)
                # One field changed: what any status write costs, apart from what it carries.
                patches = cluster.patch_status(
                    collection(namespace), names, lambda _: {"observedGeneration": 2}
                )
                result[kind]["one_field_status_patch_cpu_ms"] = await spent(patches)
            log(f"{count} {kind}: {result[kind]}")
    finally:
        await cluster.http.close()
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


@contextlib.contextmanager
def installed(
    folder: Path, *, run_operator: bool = True
) -> Iterator[tuple[ControlPlane, Admin, RoleProcess, str]]:
    """A control plane with the release installed and its operator running (as its ServiceAccount)."""
    plane = ControlPlane(find_assets(), audited=[NAMESPACE], logs=folder / "logs")
    plane.start()
    try:
        admin = Admin(plane.admin_kubeconfig)
        release = Release(plane, folder / "release", "https://login.example.com")
        release.set_up(admin.serves_oidcclients)
        operator = release.operator()
        # Warnings only, as the kmock bench ran it: a line per handled event would be the log's cost.
        operator.component.command.append("--log-level=WARNING")
        if run_operator:
            operator.start()
        try:
            yield plane, admin, operator, release.service_account("operator")
        finally:
            if run_operator:
                operator.stop()
    finally:
        plane.stop()


def api_server_only(counts: list[int]) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="kubeoidc-api-server-") as tmp,
        installed(Path(tmp), run_operator=False) as (plane, admin, _, _),
    ):
        plane.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(unruled_crd()))
        plane.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{UNRULED_GROUP}")
        for count in counts:
            result = asyncio.run(measure_api_server(plane, admin, count))
            print("API_SERVER " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", type=int, nargs="+", help="OIDCClients to create, one run per count")
    parser.add_argument("--timeout", type=float, default=300, help="seconds each run may take")
    parser.add_argument(
        "--without-operator",
        action="store_true",
        help="measure the control plane's CPU per object created, without the operator",
    )
    args = parser.parse_args()
    if args.without_operator:
        api_server_only(args.counts)
        return
    with tempfile.TemporaryDirectory(prefix="kubeoidc-operator-scale-") as tmp, installed(Path(tmp)) as setup:
        plane, admin, operator, user = setup
        log(f"operator running, {memory_mib(operator.component.process.pid)['rss_mib']:.1f} MiB")  # type: ignore[union-attr]
        for count in args.counts:
            result = asyncio.run(measure_one(plane, admin, operator, user, count, args.timeout))
            print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
