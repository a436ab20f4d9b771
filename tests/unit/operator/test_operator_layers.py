"""The decisions stay pure: importing them loads neither kopf nor the Kubernetes client."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["kubeoidc_operator", "kubeoidc_operator.reconcile", "kubeoidc_operator.settings"]
)
def test_pure_modules_import_neither_kopf_nor_the_kubernetes_client(module: str) -> None:
    forbidden = ("kopf", "kubernetes", "kubeoidc_provider")
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
