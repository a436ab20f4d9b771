"""What the provider loads before it serves: in a pod, with no users file, neither ``httpx2`` (its
Kubernetes client speaks ``http.client``; back-channel logout and client key sets load httpx2 when first
used) nor PyYAML (a pod's ServiceAccount needs no kubeconfig, and the CRD's served values are read
without parsing the CRD), nor ``importlib.resources`` (the pages, the stylesheet and the CRD are read
beside their modules; it would bring ``zipfile`` and ``tempfile`` along). Each would cost every
deployment memory for nothing until then."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.certificates import CertificateAuthority
from support.live import free_port
from support.provider import ISSUER, signing_jwks

# A fresh interpreter runs `kubeoidc provider` up to the point the server would listen: settings, keys,
# state, the Kubernetes client and the app are all built. The ServiceAccount's files are where the test
# put them, not where the kubelet mounts them.
SCRIPT = """
import sys, uvicorn
from pathlib import Path
import kubeoidc_contract.cluster_access as cluster_access
cluster_access.in_cluster.__defaults__ = (Path(sys.argv.pop(1)),)
from kubeoidc.cli import main
def listen(self, sockets=None):
    loaded = (
        name for name in sys.modules
        if name.split(".")[0] in ("httpx2", "yaml") or name in ("importlib.resources", "zipfile")
    )
    print("LOADED", " ".join(sorted(loaded)))
uvicorn.Server.run = listen
sys.exit(main(sys.argv[1:]))
"""


def test_the_provider_in_a_pod_without_a_users_file_loads_no_httpx2_yaml_or_resources_before_it_serves(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(signing_jwks()))
    service_account = tmp_path / "serviceaccount"
    service_account.mkdir()
    (service_account / "token").write_text("a-service-account-token")
    (service_account / "ca.crt").write_bytes(CertificateAuthority("cluster CA").pem)
    argv = [sys.executable, "-c", SCRIPT, str(service_account), "provider", f"--issuer={ISSUER}",
            f"--port={free_port()}", f"--health-port={free_port()}", f"--signing-keys-file={keys}",
            "--storage-url=memory://", "--registry-stale-after=0"]  # fmt: skip
    # In a pod; the registry's watch is started by the server (never here): any address will do.
    environment = {**os.environ, "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    environment.pop("KUBECONFIG", None)

    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=environment)

    assert result.returncode == 0, result.stderr
    assert "LOADED \n" in result.stdout, result.stdout
