"""The npm relying party (``tests/node/relying-party.mjs``: ``openid-client``, and Debian's Chromium
through ``playwright-core`` for the pages) as pytest fixtures: it reads its configuration as JSON on stdin
and prints one JSON result. Every run has a timeout; a missing tool fails the test with what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
RELYING_PARTY = NODE_DIR / "relying-party.mjs"
#: Debian's Chromium; another build can be named with this environment variable.
CHROMIUM = os.environ.get("KUBEOIDC_TEST_CHROMIUM", "/usr/bin/chromium")
#: A browser flow takes 2-3 s here (Chromium starts in about 1 s); the bound only stops a hang.
NODE_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` binary, with the relying party's packages installed."""
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("Node.js (>= 20) is needed for the relying-party tests: install it, or -m 'not node'")
    for package in ("openid-client", "playwright-core"):
        if not (NODE_DIR / "node_modules" / package).is_dir():
            pytest.fail(f"npm package {package} is missing: run `npm ci` in {NODE_DIR}")
    return binary


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is needed at {CHROMIUM} (Debian: apt-get install chromium), or set "
            "KUBEOIDC_TEST_CHROMIUM; never `npx playwright install`. Or deselect with -m 'not browser'."
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def relying_party(node: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, Any]]:
    """Run one scenario of the npm relying party and return its JSON result."""
    # Chromium's profiles and scratch files go under pytest's temporary folder, even after a kill.
    environment = {**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("relying-party"))}

    def run(
        scenario: str, config: dict[str, Any], *, timeout: float = NODE_TIMEOUT, script: Path = RELYING_PARTY
    ) -> dict[str, Any]:
        return run_node_script(
            node,
            script,
            scenario,
            config,
            env=environment,
            timeout=timeout,
            label=f"relying party {scenario!r}",
        )

    return run


def run_node_script(
    node: str,
    script: Path,
    argument: str,
    config: dict[str, Any],
    *,
    env: dict[str, str],
    timeout: float,
    label: str,
) -> dict[str, Any]:
    """Run ``node script argument`` with ``config`` as JSON on stdin; its last line of output, as JSON.

    The test fails (naming ``label``) on a timeout, a non-zero exit, no result or a ``failed`` member.
    """
    # Its own process group, so that a timeout also ends the Chromium it started.
    with subprocess.Popen(
        [node, str(script), argument],
        cwd=NODE_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(json.dumps(config), timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"{label} did not finish in {timeout} s:\n{stderr[-4000:]}")
    lines = stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {}
    if process.returncode != 0 or not result or "failed" in result:
        pytest.fail(
            f"{label} failed (exit {process.returncode}):\n"
            f"{json.dumps(result, indent=2)[-6000:]}\nstdout: {stdout[-2000:]}\nstderr: {stderr[-4000:]}"
        )
    return result
