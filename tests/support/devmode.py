"""``kubeoidc dev`` as a user runs it: a subprocess on a folder of manifests, read through what it prints.

The fixtures here are registered by the dev-mode tests' conftest.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

from support.live import free_port

STARTUP_TIMEOUT = 30.0


@dataclass
class DevProcess:
    """A running ``kubeoidc dev``, with everything it has printed so far."""

    process: subprocess.Popen[str]
    folder: Path
    issuer: str
    #: Where ``/healthz``, ``/readyz`` and ``/metrics`` are: the health port, not the issuer's.
    health: str
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread = field(init=False)

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10.0, start: int = 0) -> re.Match[str]:
        """The first printed line (from ``start``) matching ``pattern``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                match = re.search(pattern, line)
                if match:
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; kubeoidc dev printed:\n{self.output()}")

    def card(self, name: str, start: int = 0, timeout: float = 10.0) -> dict[str, str]:
        """The client ID and secret printed for OIDCClient ``name`` (the latest card from ``start``)."""
        self.wait_for(rf"OIDCClient default/{name} ", timeout, start)
        index = max(i for i, line in enumerate(self.lines) if f"OIDCClient default/{name} " in line)
        block = self.lines[index : index + 4]
        client_id = re.search(r"client_id:\s+(\S+)", block[1])
        client_secret = re.search(r"client_secret:\s+(\S+)", block[2])
        assert client_id, block
        assert client_secret, block
        return {"client_id": client_id.group(1), "client_secret": client_secret.group(1), "header": block[0]}

    def demo_password(self) -> str:
        return self.wait_for(r"demo user: demo / (\S+)").group(1)


StartDev = Callable[..., DevProcess]


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    folder = tmp_path / "clients"
    folder.mkdir()
    return folder


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[StartDev]:
    started: list[DevProcess] = []

    def start(folder: Path, state: Path | None = None, *, tls: bool = False) -> DevProcess:
        dev = launch(folder, state or tmp_path / "state", tmp_path, tls=tls)
        started.append(dev)
        return dev

    yield start
    for dev in started:
        stop(dev)


def launch(
    folder: Path, state: Path, cwd: Path, env: dict[str, str] | None = None, *, tls: bool = False
) -> DevProcess:
    """``kubeoidc dev`` on ``folder``, ready to serve (``env`` adds settings; ``tls``: HTTPS with the
    local CA it makes); stop it with ``stop``."""
    port, health_port = free_port(), free_port()
    command = [sys.executable, "-m", "kubeoidc.cli", "dev", str(folder)]
    command += ["--state", str(state), "--port", str(port), "--health-port", str(health_port)]
    command += ["--tls"] if tls else []
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment, cwd=cwd
    )
    scheme = "https" if tls else "http"
    dev = DevProcess(process, folder, f"{scheme}://127.0.0.1:{port}", f"{scheme}://127.0.0.1:{health_port}")
    dev.reader = threading.Thread(target=_collect, args=(process, dev.lines), daemon=True)
    dev.reader.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            # With --tls the CA is written before the server listens: every answer is verified.
            ca = state / "tls" / "ca.crt"
            verify: ssl.SSLContext | bool = True
            if tls and ca.exists():
                verify = ssl.create_default_context(cafile=str(ca))
            if (not tls or ca.exists()) and httpx2.get(
                f"{dev.health}/readyz", timeout=1, verify=verify
            ).status_code == 200:
                return dev
        except httpx2.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stop(dev)
    raise AssertionError(f"kubeoidc dev did not start:\n{dev.output()}")


def stop(dev: DevProcess) -> None:
    if dev.process.poll() is None:
        dev.process.terminate()
        try:
            dev.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dev.process.kill()
            dev.process.wait(timeout=5)
    dev.reader.join(timeout=5)
    if dev.process.stdout is not None:
        dev.process.stdout.close()


def _collect(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
