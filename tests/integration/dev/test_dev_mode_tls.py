"""``kubeoidc dev --tls``: an https issuer on one machine, from a local CA kept in the state folder."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx2

from support.devmode import StartDev, stop


def test_dev_tls_serves_https_with_the_printed_ca_and_keeps_it_across_restarts(
    start_dev: StartDev, manifests: Path, tmp_path: Path
) -> None:
    dev = start_dev(manifests, tls=True)
    ca = Path(dev.wait_for(r"CA: +(\S+)").group(1))
    assert ca == (tmp_path / "state" / "tls" / "ca.crt").resolve()
    trust = ssl.create_default_context(cafile=str(ca))
    document = httpx2.get(f"{dev.issuer}/.well-known/openid-configuration", verify=trust, timeout=5).json()
    assert document["issuer"] == dev.issuer
    assert dev.issuer.startswith("https://127.0.0.1:")
    assert document["device_authorization_endpoint"] == f"{dev.issuer}/device_authorization"
    first = ca.read_bytes()
    stop(dev)

    again = start_dev(manifests, tls=True)
    assert ca.read_bytes() == first  # the CA a cluster was given stays valid
    trust = ssl.create_default_context(cafile=str(ca))
    assert httpx2.get(f"{again.issuer}/jwks", verify=trust, timeout=5).status_code == 200
