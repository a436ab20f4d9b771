"""Where the operator finds its API server and credentials (``access``): a kubeconfig's current context or
the pod's ServiceAccount, read once; a token file read again only when the kubelet replaces it; the same
access handed to kopf's login."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from kubeoidc_operator.access import AccessError, connection_info_fields, from_environment, in_pod
from support.certificates import CertificateAuthority, cert_pem, key_pem


def kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def test_a_kubeconfig_with_a_ca_file_and_a_token_gives_that_server_ca_and_token(tmp_path: Path) -> None:
    authority = CertificateAuthority("test-ca")
    (tmp_path / "ca.crt").write_bytes(authority.pem)
    path = kubeconfig(
        tmp_path / "config",
        {"server": "https://127.0.0.1:6443/", "certificate-authority": "ca.crt"},
        {"token": "t0"},
    )

    access = from_environment({"KUBECONFIG": f"{path}{os.pathsep}/elsewhere"})

    assert access.server == "https://127.0.0.1:6443"
    assert access.ssl_context is not None
    assert access.token is not None
    assert access.token() == "t0"
    assert access.ca_pem == authority.pem.decode()


def test_a_token_file_is_read_again_when_the_kubelet_replaces_it(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first\n")
    path = kubeconfig(tmp_path / "config", {"server": "http://127.0.0.1:8080"}, {"tokenFile": "token"})
    access = from_environment({"KUBECONFIG": str(path)})
    assert access.token is not None
    assert access.token() == "first"

    # As the kubelet does: a new file moved over the old one.
    (tmp_path / "token.new").write_text("second-and-longer\n")
    (tmp_path / "token.new").replace(tmp_path / "token")

    assert access.token() == "second-and-longer"


def test_a_kubeconfig_with_inline_client_certificate_authenticates_by_it(tmp_path: Path) -> None:
    authority = CertificateAuthority("test-ca")
    cert, key = authority.issue("operator", server=False)
    inline = {
        "client-certificate-data": base64.b64encode(cert_pem(cert)).decode(),
        "client-key-data": base64.b64encode(key_pem(key)).decode(),
    }
    cluster = {
        "server": "https://api.example",
        "certificate-authority-data": base64.b64encode(authority.pem).decode(),
    }
    access = from_environment({"KUBECONFIG": str(kubeconfig(tmp_path / "config", cluster, inline))})

    assert access.token is None
    assert access.certificate_pem == cert_pem(cert).decode()
    info = kopf.ConnectionInfo(**connection_info_fields(access))
    assert info.server == "https://api.example"
    assert info.certificate_data == cert_pem(cert)
    assert info.token is None


def test_a_kubeconfig_that_needs_a_credential_plugin_is_refused_with_what_to_give_instead(
    tmp_path: Path,
) -> None:
    path = kubeconfig(tmp_path / "config", {"server": "https://api.example"}, {"exec": {"command": "aws"}})

    with pytest.raises(AccessError, match="give it a token, a tokenFile or a client certificate"):
        from_environment({"KUBECONFIG": str(path)})


def test_no_pod_and_no_kubeconfig_says_so(tmp_path: Path) -> None:
    with pytest.raises(AccessError, match=r"not in a pod, and the kubeconfig .* is unusable"):
        from_environment({"KUBECONFIG": str(tmp_path / "missing")})


def test_in_a_pod_the_service_account_token_and_ca_are_used(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_bytes(CertificateAuthority("cluster-ca").pem)

    access = in_pod("fd00::1", "443", tmp_path)

    assert access.server == "https://[fd00::1]:443"
    assert access.token is not None
    assert access.token() == "pod-token"
    assert kopf.ConnectionInfo(**connection_info_fields(access)).token == "pod-token"
