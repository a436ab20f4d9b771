"""kopf logs in with the operator's own access (``run.connection_info``): the same server, CA and
identity as the operator's calls, the token as it is at each login."""

from __future__ import annotations

from pathlib import Path

from kubeoidc_contract.cluster_access import ClusterAccess, in_cluster
from kubeoidc_operator.run import connection_info
from support.certificates import CertificateAuthority, cert_pem, key_pem


def test_kopf_logs_in_with_the_client_certificate_of_the_access() -> None:
    authority = CertificateAuthority("test-ca")
    cert, key = authority.issue("operator", server=False)
    access = ClusterAccess(
        server="https://api.example",
        ca_pem=authority.pem.decode(),
        certificate_pem=cert_pem(cert).decode(),
        private_key_pem=key_pem(key).decode(),
    )

    info = connection_info(access)

    assert info.server == "https://api.example"
    assert (info.ca_data, info.certificate_data, info.private_key_data) == (
        authority.pem,
        cert_pem(cert),
        key_pem(key),
    )
    assert info.token is None
    assert info.insecure is None


def test_in_a_pod_kopf_logs_in_with_the_service_account_token_as_it_is_now(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_bytes(CertificateAuthority("cluster-ca").pem)
    access = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
    assert access is not None
    assert connection_info(access).token == "pod-token"

    (tmp_path / "token.new").write_text("renewed-token")
    (tmp_path / "token.new").replace(tmp_path / "token")

    info = connection_info(access)
    assert (info.server, info.token) == ("https://[fd00::1]:443", "renewed-token")
