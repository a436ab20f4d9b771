"""``kubeoidc cluster-config``: the AuthenticationConfiguration and kubeconfig user a cluster admin pastes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeoidc.cli import main
from kubeoidc.local_tls import ensure_local_tls


def printed(capsys: pytest.CaptureFixture[str], *args: str) -> list[Any]:
    assert main(["cluster-config", *args]) == 0
    return list(yaml.safe_load_all(capsys.readouterr().out))


def test_default_maps_a_verified_email_to_the_username_and_prefixes_groups(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tls = ensure_local_tls(tmp_path)
    config, kubeconfig = printed(
        capsys, "--issuer", "https://login.example.com", "--client-id", "kubectl-id",
        "--certificate-authority", str(tls.ca_file),
    )  # fmt: skip
    assert config["apiVersion"] == "apiserver.config.k8s.io/v1"
    assert config["kind"] == "AuthenticationConfiguration"
    [jwt] = config["jwt"]
    assert jwt["issuer"] == {
        "url": "https://login.example.com",
        "audiences": ["kubectl-id"],
        "certificateAuthority": tls.ca_file.read_text(),
    }
    assert jwt["claimMappings"] == {
        "username": {"claim": "email", "prefix": ""},
        "groups": {"claim": "groups", "prefix": "oidc:"},
    }
    assert jwt["claimValidationRules"][0]["expression"] == "claims.?email_verified.orValue(false) == true"
    [user] = kubeconfig["users"]
    assert user["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1"
    assert user["user"]["exec"]["command"] == "kubeoidc"
    assert user["user"]["exec"]["args"] == [
        "login", "--issuer", "https://login.example.com", "--client-id", "kubectl-id",
        "--certificate-authority", str(tls.ca_file.resolve()),
    ]  # fmt: skip


def test_username_from_sub_gets_a_prefix_and_needs_no_verified_email(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, _ = printed(
        capsys, "--issuer", "https://login.example.com", "--client-id", "k", "--username-claim", "sub"
    )
    [jwt] = config["jwt"]
    assert jwt["claimMappings"]["username"] == {"claim": "sub", "prefix": "oidc:"}
    assert "claimValidationRules" not in jwt
    assert "certificateAuthority" not in jwt["issuer"]


def test_an_http_issuer_is_refused_because_kube_apiserver_needs_https(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cluster-config", "--issuer", "http://127.0.0.1:8080", "--client-id", "k"]) == 2
    assert "only an https issuer" in capsys.readouterr().err


def test_only_one_document_can_be_printed_to_save_it_as_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    [config] = printed(
        capsys, "--issuer", "https://login.example.com", "--client-id", "k", "--only", "authentication"
    )
    assert config["kind"] == "AuthenticationConfiguration"
    [user] = printed(
        capsys, "--issuer", "https://login.example.com", "--client-id", "k", "--only", "kubeconfig"
    )
    assert user["users"][0]["name"] == "oidc"
