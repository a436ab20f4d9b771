"""``kubeoidc dev`` on the examples: identity sources nobody can reach are reported, never fatal."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx2

from support.devmode import StartDev

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_dev_starts_on_the_examples_and_reports_unreachable_identity_sources(
    manifests: Path, start_dev: StartDev
) -> None:
    for example in EXAMPLES.glob("*.yaml"):
        shutil.copy(example, manifests / example.name)

    dev = start_dev(manifests)

    dev.wait_for(r"IdentitySource company-sso: cannot be reached now \(UpstreamUnavailable\); offered anyway")
    dev.wait_for(r"IdentitySource corp-ldap: cannot be reached now", timeout=15)
    assert "change-me" not in dev.output()
    discovery = httpx2.get(f"{dev.issuer}/.well-known/openid-configuration", timeout=10)
    assert discovery.status_code == 200


def test_an_identity_source_whose_secret_is_missing_is_refused_with_the_field_named(
    manifests: Path, start_dev: StartDev
) -> None:
    (manifests / "sso.yaml").write_text(
        """apiVersion: kubeoidc.io/v1alpha1
kind: IdentitySource
metadata: {name: sso}
spec:
  type: OIDC
  oidc: {issuer: "https://sso.example.test", clientID: kubeoidc, clientSecretRef: {name: missing}}
"""
    )

    dev = start_dev(manifests)

    dev.wait_for(r"refused: IdentitySource sso: spec.oidc.clientSecretRef: the Secret 'missing' has no key")
