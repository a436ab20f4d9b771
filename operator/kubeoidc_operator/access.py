"""Which API server the operator talks to, and its credentials: read once at start, not per call.

In a pod (``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` and the mounted ServiceAccount): that
address, the mounted CA, and the mounted token. The kubelet renews the token by swapping the file, so
:class:`RenewedToken` reads it again only when the file is another one than last time (a ``stat`` per
call, no re-parse of anything). Outside a pod: the current context of the kubeconfig (``KUBECONFIG``'s
first file, else ``~/.kube/config``): its server, CA, and a token, a token file or a client certificate.
Credential plugins (``exec``, ``auth-provider``) are refused with a message: the operator runs as its
ServiceAccount.

The same access logs kopf in (:func:`connection_info`), so kopf's watches and the reconciles' calls go
to one API server as one identity. Nothing here logs a token.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Where the kubelet mounts a pod's ServiceAccount token and CA.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class AccessError(ValueError):
    """No usable way to the API server: neither a pod's ServiceAccount nor a kubeconfig it can use."""


class RenewedToken:
    """The token in a file, read again whenever the file is replaced or rewritten."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._identity: tuple[int, int, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        found = self.path.stat()
        identity = (found.st_ino, found.st_mtime_ns, found.st_size)
        if identity != self._identity:
            with self._lock:
                self._token = self.path.read_text().strip()
                self._identity = identity
        return self._token


@dataclass(frozen=True)
class ClusterAccess:
    """An API server, how to trust it, and how to authenticate to it."""

    server: str
    #: None: plain HTTP (a test API server), or the system's CAs for https without a CA of its own.
    ssl_context: ssl.SSLContext | None = None
    #: The bearer token for the next call, or None (a client certificate, or no authentication).
    token: Callable[[], str] | None = None
    #: What kopf's login needs besides: the CA and client certificate, as PEM text.
    ca_pem: str | None = None
    certificate_pem: str | None = None
    private_key_pem: str | None = None
    insecure: bool = False


def from_environment(environ: Mapping[str, str] | None = None) -> ClusterAccess:
    """The pod's ServiceAccount when running in one, else the kubeconfig."""
    environ = os.environ if environ is None else environ
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if host and port and (SERVICE_ACCOUNT / "token").is_file():
        return in_pod(host, port, SERVICE_ACCOUNT)
    listed = [part for part in environ.get("KUBECONFIG", "").split(os.pathsep) if part]
    path = Path(listed[0] if listed else "~/.kube/config").expanduser()
    return from_kubeconfig(path)


def in_pod(host: str, port: str, folder: Path) -> ClusterAccess:
    host = f"[{host}]" if ":" in host else host  # an IPv6 Service address
    ca = (folder / "ca.crt").read_text()
    return ClusterAccess(
        server=f"https://{host}:{port}",
        ssl_context=ssl.create_default_context(cadata=ca),
        token=RenewedToken(folder / "token"),
        ca_pem=ca,
    )


def from_kubeconfig(path: Path) -> ClusterAccess:
    """The current context of the kubeconfig at ``path``; its relative file names are from its folder."""
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise AccessError(
            f"no API server: not in a pod, and the kubeconfig {path} is unusable: {error}"
        ) from None
    if not isinstance(config, Mapping):
        raise AccessError(f"the kubeconfig {path} is not a mapping")
    context = _entry(config, "contexts", config.get("current-context"), path)
    cluster = _entry(config, "clusters", context.get("cluster"), path)
    user = _entry(config, "users", context.get("user"), path) if context.get("user") else {}
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise AccessError(f"the kubeconfig {path} names no server in its current context")
    if "exec" in user or "auth-provider" in user:
        raise AccessError(
            f"the kubeconfig {path} authenticates through a plugin, which the operator does not run: "
            "give it a token, a tokenFile or a client certificate"
        )
    folder = path.parent
    ca = _pem(cluster, "certificate-authority", folder)
    certificate, key = _pem(user, "client-certificate", folder), _pem(user, "client-key", folder)
    insecure = cluster.get("insecure-skip-tls-verify") is True
    token: Callable[[], str] | None = None
    if isinstance(user.get("token"), str) and user["token"]:
        fixed: str = user["token"]
        token = lambda: fixed  # noqa: E731
    elif isinstance(user.get("tokenFile"), str) and user["tokenFile"]:
        token = RenewedToken(folder / Path(user["tokenFile"]).expanduser())
    context_ssl = None
    if server.startswith("https://"):
        context_ssl = _ssl_context(ca, certificate, key, insecure=insecure)
    return ClusterAccess(
        server=server.rstrip("/"),
        ssl_context=context_ssl,
        token=token,
        ca_pem=ca,
        certificate_pem=certificate,
        private_key_pem=key,
        insecure=insecure,
    )


def _entry(config: Mapping[str, Any], section: str, name: object, path: Path) -> Mapping[str, Any]:
    kind = section[:-1]  # "clusters" holds entries with a "cluster"
    for item in config.get(section) or ():
        if isinstance(item, Mapping) and item.get("name") == name and isinstance(item.get(kind), Mapping):
            found: Mapping[str, Any] = item[kind]
            return found
    raise AccessError(f"the kubeconfig {path} has no {kind} named {name!r}")


def _pem(section: Mapping[str, Any], key: str, folder: Path) -> str | None:
    """A PEM given inline (``<key>-data``, base64) or as a file (``<key>``), as text."""
    inline, file = section.get(f"{key}-data"), section.get(key)
    if isinstance(inline, str) and inline:
        return base64.b64decode(inline).decode()
    if isinstance(file, str) and file:
        return (folder / Path(file).expanduser()).read_text()
    return None


def _ssl_context(
    ca: str | None, certificate: str | None, key: str | None, *, insecure: bool
) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certificate and key:
        # ssl loads a certificate chain from files only: written to a private folder, gone once loaded.
        with tempfile.TemporaryDirectory(prefix="kubeoidc-operator-") as folder:
            cert_file, key_file = Path(folder, "tls.crt"), Path(folder, "tls.key")
            cert_file.write_text(certificate)
            key_file.touch(0o600)
            key_file.write_text(key)
            context.load_cert_chain(str(cert_file), str(key_file))
    return context


def connection_info_fields(access: ClusterAccess) -> dict[str, Any]:
    """kopf's ``ConnectionInfo`` arguments for this access (the token as it is now)."""
    return {
        "server": access.server,
        "ca_data": access.ca_pem.encode() if access.ca_pem else None,
        "insecure": access.insecure or None,
        "token": access.token() if access.token is not None else None,
        "certificate_data": access.certificate_pem.encode() if access.certificate_pem else None,
        "private_key_data": access.private_key_pem.encode() if access.private_key_pem else None,
    }
