"""The benchmark harness keeps working: ``bench/run.py --quick`` measures every target on every server.

Speed is never asserted here (the figures depend on the machine and on what else runs): only that each
row is there, with positive figures and no failed request, and that the provider's memory was measured.
The operator's scale run needs a real API server: the cluster tier runs it in a quick mode
(``tests/cluster/test_operator_scale.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TARGETS = [
    "discovery",
    "JWKS",
    "token (client_credentials)",
    "token (client_credentials, ES256)",
    "token (client_credentials, EdDSA)",
    "token (client_credentials, opaque)",
    "token (code exchange)",
    "token (code exchange, ES256)",
    "userinfo",
    "introspection",
    "token (client_credentials, 2 processes)",
    "token (client_credentials, ES256, 2 processes)",
    "token (client_credentials, opaque, state in memory)",
    "token (code exchange, state in memory)",
    "token (code exchange, ES256, state in memory)",
    "token (client_credentials, opaque, state in Redis)",
    "token (code exchange, state in Redis)",
    "token (code exchange, ES256, state in Redis)",
    "introspection (state in Redis)",
]
SERVERS = ["peer", "kubeoidc", "ceiling"]


def tables(output: str) -> list[list[dict[str, str]]]:
    """The Markdown tables printed, each as rows keyed by the header's column names."""
    found: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in [*output.splitlines(), ""]:
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            found.append([])
        elif set(line) - set("|-"):
            found[-1].append(dict(zip(header, cells, strict=True)))
    return found


def test_quick_benchmark_prints_every_row_with_positive_figures(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    speed, scale = tables(result.stdout)
    measured = {(row["target"], row["server"]): row for row in speed}
    assert set(measured) == {(target, server) for target in TARGETS for server in SERVERS}
    for (target, server), row in measured.items():
        for column in ("req/s", "p50 ms", "p99 ms", "cores", "CPU us/req", "RSS MiB"):
            assert float(row[column]) > 0, (column, row)
        assert row["errors"] == "0", f"{target} on {server} had failed requests: {row}"
        if server == "kubeoidc":
            assert float(row["kubeoidc/peer"].removesuffix("x")) > 0, row
            assert float(row["kubeoidc/ceiling"].removesuffix("x")) > 0, row

    registry = [row for row in scale if row["measure"].startswith("provider:")]
    assert [int(row["clients"]) for row in registry] == [1, 10_001]
    assert all(float(row["RSS MiB"]) > 0 for row in registry)
    assert not [row for row in scale if row["measure"].startswith("operator:")]

    document = json.loads(figures.read_text())
    assert len(document["rows"]) == len(TARGETS) * len(SERVERS)
    assert all(run["requests"] > 0 for row in document["rows"] for run in row["runs"])
