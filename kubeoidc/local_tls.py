"""A local certificate authority and a serving certificate, for an ``https`` issuer on one machine.

kube-apiserver trusts only an ``https`` issuer, and only through a CA it is given. ``kubeoidc dev --tls``
makes both here, in the state folder, once: the CA (``ca.crt``, whose key is kept beside it) signs a
serving certificate for ``localhost``, ``127.0.0.1`` and ``::1``. The files are kept across runs, so
the CA a cluster was told about stays valid; a serving certificate close to its end is renewed.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = datetime.timedelta(days=3650)
SERVING_LIFETIME = datetime.timedelta(days=90)
#: A serving certificate with less left than this is made again at start.
RENEW_BEFORE = datetime.timedelta(days=30)
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class LocalTLS:
    """Where the files are: the CA to give to clients, the serving pair to give to the provider."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def ensure_local_tls(folder: Path, *, lifetime: datetime.timedelta = SERVING_LIFETIME) -> LocalTLS:
    """The CA and serving certificate in ``folder``, made when missing (or the serving one when old)."""
    folder.mkdir(parents=True, exist_ok=True)
    tls = LocalTLS(folder / "ca.crt", folder / "tls.crt", folder / "tls.key")
    ca_key_file = folder / "ca.key"
    if not (tls.ca_file.exists() and ca_key_file.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        _write_key(ca_key_file, ca_key)
        tls.ca_file.write_bytes(_ca_certificate(ca_key).public_bytes(serialization.Encoding.PEM))
    if _needs_serving(tls.cert_file):
        loaded = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_file} is not an EC key kubeoidc made: delete {folder} to start afresh")
        ca_cert = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
        issue_serving_certificate(ca_cert, loaded, tls.cert_file, tls.key_file, lifetime=lifetime)
    return tls


def issue_serving_certificate(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cert_file: Path,
    key_file: Path,
    *,
    lifetime: datetime.timedelta = SERVING_LIFETIME,
) -> None:
    """Write a new key and a certificate for the loopback names, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in LOOPBACK_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in LOOPBACK_ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_file, key)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubeoidc local CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def _needs_serving(cert_file: Path) -> bool:
    if not cert_file.exists():
        return True
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < RENEW_BEFORE


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
