"""Where the operator and the provider find their API server and credentials: the pod's ServiceAccount (its
token read again after the kubelet rotates it), else the kubeconfig's current context; a clear error
otherwise."""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
from pathlib import Path
from typing import Any

import pytest

from kubeoidc_contract.cluster_access import (
    ClusterAccess,
    NoClusterError,
    TokenFile,
    from_environment,
    from_kubeconfig,
    in_cluster,
)
from support.certificates import CertificateAuthority, cert_pem, key_pem


def write_kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "other", "cluster": {"server": "https://other:6443"}},
                    {"name": "dev", "cluster": cluster},
                ],
                "users": [{"name": "dev", "user": user}],
                "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}],
                "current-context": "dev",
            }
        )
    )
    return path


def test_a_rotated_service_account_token_is_read_again(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    token = TokenFile(token_file)
    assert token() == "first-token"

    # The kubelet writes the new token aside and swaps it in.
    fresh = tmp_path / "token.new"
    fresh.write_text("second-token")
    os.replace(fresh, token_file)

    assert token() == "second-token"


def test_in_a_pod_the_service_account_and_the_service_address_are_used(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_bytes(CertificateAuthority("test-ca").pem)

    access = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)

    assert access is not None
    assert access.server == "https://[fd00::1]:443"
    assert access.token is not None
    assert access.token() == "pod-token"
    assert access.ssl_context is not None
    assert access.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_outside_a_pod_there_is_no_in_cluster_access(tmp_path: Path) -> None:
    assert in_cluster({}, tmp_path) is None
    assert (
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
        is None
    )


def test_the_kubeconfig_current_context_gives_server_ca_and_token(tmp_path: Path) -> None:
    ca = base64.b64encode(CertificateAuthority("test-ca").pem).decode()
    path = write_kubeconfig(
        tmp_path / "config",
        {"server": "https://127.0.0.1:6443/", "certificate-authority-data": ca},
        {"token": "dev-token"},
    )

    access = from_environment({"KUBECONFIG": f"{path}{os.pathsep}{tmp_path / 'ignored'}"})

    assert access.server == "https://127.0.0.1:6443"
    assert access.token is not None
    assert access.token() == "dev-token"
    assert access.ssl_context is not None
    assert access.ssl_context.cert_store_stats()["x509_ca"] == 1


def test_a_kubeconfig_token_file_is_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file")
    path = write_kubeconfig(tmp_path / "config", {"server": "http://127.0.0.1:8001"}, {"tokenFile": "token"})

    access = from_kubeconfig(path)

    assert access.ssl_context is None
    assert access.token is not None
    assert access.token() == "from-file"


def test_a_kubeconfig_with_an_exec_plugin_is_refused_with_what_to_use_instead(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config", {"server": "https://127.0.0.1:6443"}, {"exec": {"command": "gke-auth"}}
    )

    with pytest.raises(NoClusterError, match="token, a tokenFile or a client certificate"):
        from_kubeconfig(path)


def test_without_a_pod_or_a_kubeconfig_the_error_says_so(tmp_path: Path) -> None:
    with pytest.raises(NoClusterError, match=r"not running in a pod, and no kubeconfig at .*missing"):
        from_environment({"KUBECONFIG": str(tmp_path / "missing")})


def test_a_kubeconfig_ca_file_is_kept_as_text_beside_the_tls_context(tmp_path: Path) -> None:
    authority = CertificateAuthority("test-ca")
    (tmp_path / "ca.crt").write_bytes(authority.pem)
    path = write_kubeconfig(
        tmp_path / "config", {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt"}, {}
    )

    access = from_kubeconfig(path)

    assert access.ca_pem == authority.pem.decode()
    assert access.token is None
    assert access.ssl_context is not None
    assert access.ssl_context.cert_store_stats()["x509_ca"] == 1


def test_a_kubeconfig_inline_client_certificate_authenticates_and_insecure_skips_the_check(
    tmp_path: Path,
) -> None:
    authority = CertificateAuthority("test-ca")
    cert, key = authority.issue("operator", server=False)
    user = {
        "client-certificate-data": base64.b64encode(cert_pem(cert)).decode(),
        "client-key-data": base64.b64encode(key_pem(key)).decode(),
    }
    path = write_kubeconfig(
        tmp_path / "config", {"server": "https://api.example", "insecure-skip-tls-verify": True}, user
    )

    access = from_kubeconfig(path)

    assert access.token is None
    assert (access.certificate_pem, access.private_key_pem) == (
        cert_pem(cert).decode(),
        key_pem(key).decode(),
    )
    assert access.insecure is True
    assert access.ssl_context is not None
    assert access.ssl_context.verify_mode == ssl.CERT_NONE


def test_an_https_server_named_in_capitals_still_gets_the_kubeconfigs_ca(tmp_path: Path) -> None:
    ca = base64.b64encode(CertificateAuthority("test-ca").pem).decode()
    path = write_kubeconfig(
        tmp_path / "config", {"server": "HTTPS://127.0.0.1:6443", "certificate-authority-data": ca}, {}
    )

    access = from_kubeconfig(path)

    assert access.ssl_context is not None
    assert access.ssl_context.cert_store_stats()["x509_ca"] == 1


@pytest.mark.parametrize(
    ("cluster", "user"),
    [
        ({"certificate-authority": "missing.crt"}, {}),
        ({"certificate-authority-data": "not base64!"}, {}),
        ({}, {"client-certificate-data": base64.b64encode(b"\xff\xfe").decode(), "client-key-data": "eA=="}),
    ],
    ids=["a-missing-ca-file", "ca-data-not-base64", "a-certificate-not-text"],
)
def test_a_certificate_or_key_that_cannot_be_read_is_a_clear_error(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any]
) -> None:
    path = write_kubeconfig(tmp_path / "config", {"server": "https://127.0.0.1:6443", **cluster}, user)

    with pytest.raises(NoClusterError, match="names a certificate or key that cannot be read"):
        from_kubeconfig(path)


def test_a_connection_is_https_with_the_clusters_context_for_an_https_server_in_any_case() -> None:
    context = ssl.create_default_context()
    secure = ClusterAccess("HTTPS://api.example:6443/proxied/", context).connection(2.0)
    plain = ClusterAccess("http://127.0.0.1:8001", None).connection(2.0)

    assert isinstance(secure, http.client.HTTPSConnection)
    assert (secure.host, secure.port, secure.timeout) == ("api.example", 6443, 2.0)
    assert secure._context is context  # type: ignore[attr-defined]
    assert type(plain) is http.client.HTTPConnection
    assert (plain.host, plain.port) == ("127.0.0.1", 8001)
    assert ClusterAccess("HTTPS://api.example:6443/proxied/", context).path_prefix == "/proxied"
    assert ClusterAccess("https://api.example:6443", context).path_prefix == ""
