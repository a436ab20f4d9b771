"""The provider's way to the API server (``watcher.default_api``): without a cluster, the error says how
to run the provider without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeoidc_contract.cluster_access import NoClusterError
from kubeoidc_provider.watcher import default_api


def test_without_a_cluster_the_providers_error_points_to_the_dev_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))

    with pytest.raises(NoClusterError, match=r"no kubeconfig at .*missing; .*use `kubeoidc dev`"):
        default_api()
