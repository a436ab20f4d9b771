"""The provider as an ``https`` issuer: served from certificate files, and a renewed certificate is used
without a restart (as when cert-manager renews the mounted Secret)."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubeoidc.local_tls import issue_serving_certificate
from kubeoidc_provider.main import ConfigurationError, tls_files
from kubeoidc_provider.settings import ProviderSettings
from support.https_provider import client_context, make_tls, serve_https
from support.live import free_port
from support.provider import make_provider


def served_serial(port: int, context: ssl.SSLContext) -> int:
    """The serial number of the certificate the server shows in a new handshake (verified by the CA)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_discovery_is_served_over_https_and_a_renewed_certificate_is_used_without_restart(
    tmp_path: Path,
) -> None:
    tls = make_tls(tmp_path / "tls")
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    provider = make_provider(issuer=issuer, port=port, tls_cert_file=tls.cert_file, tls_key_file=tls.key_file)
    context = client_context(tls)
    with serve_https(provider):
        with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", context=context) as answer:
            assert json.load(answer)["issuer"] == issuer
        first = served_serial(port, context)

        ca_key = serialization.load_pem_private_key((tmp_path / "tls" / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
        issue_serving_certificate(
            ca_cert, ca_key, tls.cert_file, tls.key_file, lifetime=datetime.timedelta(days=1)
        )
        renewed = x509.load_pem_x509_certificate(tls.cert_file.read_bytes()).serial_number
        assert renewed != first

        deadline = time.monotonic() + 10
        while (served := served_serial(port, context)) != renewed and time.monotonic() < deadline:
            time.sleep(0.1)
        assert served == renewed
        with urllib.request.urlopen(f"{issuer}/jwks", context=context) as answer:
            assert answer.status == 200


def test_a_key_that_does_not_match_the_certificate_stops_the_start_with_a_clear_error(
    tmp_path: Path,
) -> None:
    one, other = make_tls(tmp_path / "one"), make_tls(tmp_path / "other")
    settings = ProviderSettings(
        issuer="https://127.0.0.1:8443", tls_cert_file=one.cert_file, tls_key_file=other.key_file
    )
    with pytest.raises(ConfigurationError, match="cannot serve HTTPS"):
        tls_files(settings)


def test_a_certificate_without_its_key_is_refused_by_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tls_cert_file and tls_key_file go together"):
        ProviderSettings(issuer="https://127.0.0.1:8443", tls_cert_file=tmp_path / "tls.crt")
