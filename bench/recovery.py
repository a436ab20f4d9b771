"""Recovery times on a real control plane: how soon the provider serves a client created after the API
server comes back from an outage, and how soon a rotated secret switches (old refused, new accepted).

Runs the cluster tier's fault-injection tests (``tests/cluster/test_faults.py``, which measure these
figures while they check what must hold) ``--rounds`` times, each on a fresh control plane, and prints
every round's figures and the medians. Needs what the cluster tier needs: ``KUBEBUILDER_ASSETS`` (the
Kubernetes test binaries), and ``KUBEOIDC_TEST_REDIS_URL`` with ``--all``.

Usage: python bench/recovery.py [--rounds N] [--all] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODULE = "tests/cluster/test_faults.py"
#: Only the tests that measure the figures below; ``--all`` runs the kills and restarts too.
MEASURING = "api_server_outage or steady_load"


def one_round(everything: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kubeoidc-recovery-") as folder:
        figures = Path(folder) / "figures.json"
        command = [sys.executable, "-m", "pytest", MODULE, "-p", "no:cacheprovider", "-q"]
        if not everything:
            command += ["-k", MEASURING]
        env = {**os.environ, "KUBEOIDC_BENCH_FIGURES": str(figures)}
        started = time.monotonic()
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not figures.exists():
            sys.exit(f"the fault-injection tests failed:\n{result.stdout[-4000:]}")
        measured: dict[str, Any] = json.loads(figures.read_text())
        measured["round_s"] = round(time.monotonic() - started, 1)
        return measured


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="every fault test, not only the measuring ones")
    parser.add_argument("--json", type=Path, help="write every round's figures here")
    args = parser.parse_args()

    rounds = []
    print(
        f"{'round':>5} {'outage s':>9} {'API back→Ready s':>17} {'API back→served s':>18} "
        f"{'Ready→served s':>15} {'served in outage':>17}"
    )
    for number in range(1, args.rounds + 1):
        measured = one_round(args.all)
        rounds.append(measured)
        print(
            f"{number:>5} {measured['outage_s']:>9} {measured['api_back_to_new_client_ready_s']:>17} "
            f"{measured['api_back_to_new_client_served_s']:>18} {measured['ready_to_served_s']:>15} "
            f"{measured['outage_requests_served']:>17}"
        )
    served = [r["api_back_to_new_client_served_s"] for r in rounds]
    after_ready = [r["ready_to_served_s"] for r in rounds]
    switches = [sample for r in rounds for sample in r["rotation_switch_samples_s"]]
    median, worst = statistics.median(served), max(served)
    print(f"\nAPI back → new client served: median {median:.2f} s, max {worst:.2f} s")
    print(f"Ready → served: median {statistics.median(after_ready):.2f} s, max {max(after_ready):.2f} s")
    print(
        f"rotation switch (Secret changed → old refused and new accepted), {len(switches)} rotations: "
        f"p50 {percentile(switches, 0.5):.3f} s, p99 {percentile(switches, 0.99):.3f} s, "
        f"max {max(switches):.3f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2) + "\n")


if __name__ == "__main__":
    main()
