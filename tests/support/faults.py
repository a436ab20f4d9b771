"""Helpers of the fault-injection module: a control plane of its own, load, a record of every Secret
version, and the figures the module measures (printed, and written where ``KUBEOIDC_BENCH_FIGURES``
says, for ``bench/recovery.py``)."""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import kubernetes

import kubeoidc_contract as contract
from support.admin import Admin, decoded
from support.release import RoleProcess

#: Where the measured figures go as JSON (bench/recovery.py sets it); unset: printed only.
FIGURES_VARIABLE = "KUBEOIDC_BENCH_FIGURES"


def kill(process: RoleProcess, signum: int = signal.SIGKILL) -> None:
    """Send ``signum`` to the role's process, wait for it to end, and forget it (no clean stop)."""
    popen = process.component.process
    assert popen is not None
    popen.send_signal(signum)
    popen.wait(timeout=30)
    process.stop()


def client_credentials(issuer: str, client_id: str, secret: str, http: httpx2.Client | None = None) -> int:
    """The status of a client_credentials token request (0: no answer at all)."""
    data = {"grant_type": "client_credentials", "scope": "invoices:read"}
    try:
        if http is None:
            return httpx2.post(f"{issuer}/token", data=data, auth=(client_id, secret), timeout=10).status_code
        return http.post(f"{issuer}/token", data=data, auth=(client_id, secret)).status_code
    except httpx2.HTTPError:
        return 0


@dataclass
class Load:
    """client_credentials requests at a steady rate from a thread, every answer's status counted."""

    issuer: str
    client_id: str
    secret: str
    rate: float = 20.0
    statuses: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, name="fault-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        with httpx2.Client(timeout=10) as http:
            while not self._stop.wait(1 / self.rate):
                status = client_credentials(self.issuer, self.client_id, self.secret, http)
                self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


class SecretHistory:
    """Every version of the managed Secrets of one namespace, as a watch delivers them: per Secret, the
    distinct ``(client_id, client_secret)`` pairs in order (a rotation adds one; nothing else may)."""

    def __init__(self, admin: Admin, namespace: str) -> None:
        self.versions: dict[str, list[tuple[str, str]]] = {}
        self.deleted: list[str] = []
        #: Why the watch broke before the end, if it did: then versions may be missing.
        self.broken: str | None = None
        self._stopping = False
        self._admin = admin
        self._namespace = namespace
        self._watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._run, name="secret-history", daemon=True)
        self._started = threading.Event()

    def _list(self, **kwargs: Any) -> Any:
        self._started.set()
        return self._admin.core.list_namespaced_secret(
            self._namespace, label_selector=contract.SECRET_SELECTOR, **kwargs
        )

    def _run(self) -> None:
        try:
            self._follow()
        except Exception as error:
            if not self._stopping:
                self.broken = repr(error)

    def _follow(self) -> None:
        for event in self._watch.stream(self._list):  # type: ignore[no-untyped-call]
            secret = event["raw_object"]
            name = secret["metadata"]["name"]
            if event["type"] == "DELETED":
                self.deleted.append(name)
                continue
            data = decoded(secret)
            pair = (data.get(contract.CLIENT_ID_KEY, ""), data.get(contract.CLIENT_SECRET_KEY, ""))
            seen = self.versions.setdefault(name, [])
            if not seen or seen[-1] != pair:
                seen.append(pair)

    def __enter__(self) -> SecretHistory:
        self._thread.start()
        self._started.wait(30)
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping = True
        self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(10)


def until(check: Callable[[], bool], what: str, timeout: float, interval: float = 0.05) -> float:
    """Poll ``check`` until true; return the monotonic time it first was. A bound that stops a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Figures:
    """The module's measurements: printed at the end, and saved as JSON for the benchmark's report."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def record(self, name: str, value: Any) -> None:
        self.values[name] = value

    def summary(self, name: str, samples: list[float]) -> None:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        self.values[name] = {
            "n": len(samples),
            "p50": round(statistics.median(samples), 3),
            "p99": round(p99, 3),
            "max": round(ordered[-1], 3),
        }

    def report(self) -> str:
        text = json.dumps(self.values, indent=2, sort_keys=True)
        target = os.environ.get(FIGURES_VARIABLE)
        if target:
            Path(target).write_text(text + "\n")
        return text
