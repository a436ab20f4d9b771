"""What the operator costs the API server per client, from the real API server's audit log: a new client
is two requests, both writes (its Secret, its status), no read and nothing written by or for kopf; and
the scale benchmark (``bench/operator_scale.py``, a control plane of its own) keeps running, in a quick
mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import kubeoidc_contract as contract
from support.admin import Admin, condition, oidcclient
from support.control_plane import ControlPlane, requested
from support.release import Release, RoleProcess, eventually

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 20


def operator_requests(plane: ControlPlane, account: str, namespace: str, since: datetime) -> Counter[str]:
    """The operator's requests about ``namespace`` since ``since``, by ``verb resource[/subresource]``.

    The operator's periodic resync (a list of the OIDCClients, then each one reconciled) reads every
    client and its Secret again, whenever its interval comes round: the reads that follow a resync's
    list are its own, not a new client's, and are left out (its writes, if any, would still count)."""
    events = sorted(
        (
            event
            for event in plane.audit_events()
            if event["user"]["username"] == account
            and event.get("stage") == "ResponseComplete"
            and received(event) >= since
        ),
        key=received,
    )
    resyncs = [
        received(event)
        for event in events
        if event["verb"] == "list" and (event.get("objectRef") or {}).get("resource") == contract.PLURAL
    ]
    resync = resyncs[0] if resyncs else None
    counted: Counter[str] = Counter()
    for event in events:
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != namespace:
            continue
        if resync is not None and received(event) >= resync and event["verb"] in ("get", "list"):
            continue
        counted[f"{event['verb']} {requested(event)}"] += 1
    return counted


def received(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))


def test_a_new_client_costs_the_operator_two_requests_the_writes_of_its_secret_and_its_status(
    admin: Admin, namespace: str, operator: RoleProcess, release: Release, control_plane: ControlPlane
) -> None:
    names = [f"app-{index:02d}" for index in range(CLIENTS)]
    started = datetime.now(UTC)
    for name in names:
        admin.create_client(namespace, oidcclient(name, {"redirectURIs": [f"https://{name}.example/cb"]}))
    eventually(
        lambda: all(condition(admin.find_client(namespace, name)).get("status") == "True" for name in names),
        f"the operator to make {CLIENTS} clients Ready",
        timeout=60,
    )
    account = release.service_account("operator")
    # The echoes of its own writes come after Ready: count once the operator has been quiet a while.
    counted = operator_requests(control_plane, account, namespace, started)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 3:
        time.sleep(0.5)
        now = operator_requests(control_plane, account, namespace, started)
        if now != counted:
            counted, quiet_since = now, time.monotonic()

    # Its two writes and nothing else: the client is planned from its event's body, and its Secret,
    # recorded nowhere yet, is created without a read; the echoes of both writes cost no request.
    assert dict(counted) == {"create secrets": CLIENTS, "patch oidcclients/status": CLIENTS}, counted
    for client in admin.list_clients(namespace):
        metadata = client["metadata"]
        assert not [key for key in metadata.get("annotations") or {} if "kopf" in key], metadata
        assert not metadata.get("finalizers"), metadata


def test_the_scale_benchmark_runs_on_a_real_api_server_in_a_quick_mode() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "operator_scale.py"), "50", "--timeout=60"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    (line,) = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    figures = json.loads(line.removeprefix("RESULT "))
    assert figures["ready"] == figures["count"] == 50, figures
    assert figures["seconds"] > 0, figures
    assert figures["operator_cpu_seconds"] > 0, figures
    assert figures["peak_rss_mib"] > 0, figures
    assert figures["writes_per_client"] <= 2, figures["requests"]
    assert figures["requests"][f"patch {contract.PLURAL}/status"] == 50, figures["requests"]
