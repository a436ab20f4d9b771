"""``kubeoidc dev`` with a real relying party: npm ``openid-client`` signs the demo user in through
the provider's pages in Debian's Chromium, with the credentials ``kubeoidc dev`` printed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.devmode import StartDev
from support.node_rp import CHROMIUM

pytestmark = [pytest.mark.node, pytest.mark.browser]

MANIFEST = """\
apiVersion: kubeoidc.io/v1alpha1
kind: OIDCClient
metadata:
  name: notes
spec:
  displayName: Team Notes
  description: Where the team writes things down.
  redirectURIs: [https://notes.example.test/callback]
  postLogoutRedirectURIs: [https://notes.example.test/signed-out]
  grantTypes: [authorization_code, refresh_token]
  scopes: [openid, profile, email, groups, offline_access]
"""


def test_openid_client_signs_the_printed_demo_user_in_with_chromium(
    manifests: Path,
    start_dev: StartDev,
    relying_party: Callable[..., dict[str, Any]],
    chromium: str,
    tmp_path: Path,
) -> None:
    (manifests / "notes.yaml").write_text(MANIFEST)
    dev = start_dev(manifests)
    card = dev.card("notes")

    result = relying_party(
        "code-flow",
        {
            "issuer": dev.issuer,
            "clientId": card["client_id"],
            "clientSecret": card["client_secret"],
            "redirectUri": "https://notes.example.test/callback",
            "postLogoutRedirectUri": "https://notes.example.test/signed-out",
            "scope": "openid profile email groups offline_access",
            "username": "demo",
            "password": dev.demo_password(),
            "chromium": CHROMIUM,
            "screenshotDir": str(tmp_path),
        },
    )

    assert result["discovery"]["issuer"] == dev.issuer
    assert result["pages"]["login"]["clientName"] == "Team Notes"
    assert result["token"]["idToken"]["aud"] == card["client_id"]
    assert result["userinfo"]["preferred_username"] == "demo"
    assert result["userinfo"]["email"] == "demo@example.com"
    assert result["refresh"]["idToken"]["sub"] == result["token"]["idToken"]["sub"]
