"""Where the Kubernetes API server is and how the provider proves who it is: in-cluster, else a kubeconfig.

In a pod (``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` set, the ServiceAccount's files
mounted): the API server at that address, its certificate checked against the mounted CA, and the
mounted ServiceAccount token as bearer token. The kubelet replaces that token before it expires (an
atomic swap of the file's symlink), so :class:`TokenFile` reads it again whenever the file changed: one
``stat`` per request, no timer.

Elsewhere (development, tests): the kubeconfig named by ``KUBECONFIG`` (its first file), else
``~/.kube/config``, its current context: the server, a CA (file or inline), and a bearer token (inline or
``tokenFile``) or a client certificate (files or inline). Exec and auth-provider plugins are not
supported: the provider is meant to run with its ServiceAccount.

Nothing here logs a token.
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

#: Where the kubelet mounts a pod's ServiceAccount credentials.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class NoClusterError(ValueError):
    """Neither an in-cluster ServiceAccount nor a usable kubeconfig says which API server to talk to."""


class TokenFile:
    """A bearer token kept in a file, read again whenever the file changes (the kubelet rotates it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        status = self.path.stat()  # follows the symlink the kubelet swaps
        seen = (status.st_ino, status.st_mtime_ns, status.st_size)
        if seen != self._seen:
            with self._lock:
                if seen != self._seen:
                    self._token = self.path.read_text().strip()
                    self._seen = seen
        return self._token


@dataclass(frozen=True)
class ClusterAccess:
    """An API server's URL, the TLS context to reach it with, and where its bearer token comes from."""

    server: str
    ssl_context: ssl.SSLContext | None
    #: Returns the bearer token for the next request; None: the TLS client certificate authenticates.
    token: Callable[[], str] | None


def from_environment(environ: Mapping[str, str] | None = None) -> ClusterAccess:
    """In-cluster when running in a pod, else the kubeconfig; :class:`NoClusterError` when neither."""
    environ = os.environ if environ is None else environ
    access = in_cluster(environ)
    if access is not None:
        return access
    path = _kubeconfig_path(environ)
    if not path.is_file():
        raise NoClusterError(
            f"no Kubernetes API to watch: not running in a cluster, and no kubeconfig at {path}; "
            "to try the provider without a cluster, use `kubeoidc dev`"
        )
    return from_kubeconfig(path)


def in_cluster(environ: Mapping[str, str], folder: Path = SERVICE_ACCOUNT_DIR) -> ClusterAccess | None:
    """The pod's API server and ServiceAccount, or None outside a pod."""
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    token = folder / "token"
    if not host or not port or not token.is_file():
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 service address
    context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    return ClusterAccess(f"https://{host}:{port}", context, TokenFile(token))


def _kubeconfig_path(environ: Mapping[str, str]) -> Path:
    listed = environ.get("KUBECONFIG", "")
    first = next((part for part in listed.split(os.pathsep) if part), None)
    return Path(first).expanduser() if first else Path("~/.kube/config").expanduser()


def from_kubeconfig(path: Path) -> ClusterAccess:
    """The current context of a kubeconfig file (relative file names are relative to its folder)."""
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise NoClusterError(f"cannot read the kubeconfig {path}: {error}") from None
    if not isinstance(config, Mapping):
        raise NoClusterError(f"the kubeconfig {path} is not a mapping")
    context = _named(config, "contexts", config.get("current-context"), path)
    cluster = _named(config, "clusters", context.get("cluster"), path)
    user = _named(config, "users", context.get("user"), path) if context.get("user") else {}
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise NoClusterError(f"the kubeconfig {path} names no server for its current context")
    if "exec" in user or "auth-provider" in user:
        raise NoClusterError(
            f"the kubeconfig {path} authenticates with a plugin, which the provider does not run: "
            "give it a token, a tokenFile or a client certificate"
        )
    base = path.parent
    context_ssl = None
    if server.startswith("https://"):
        context_ssl = _ssl_context(cluster, user, base)
    token: Callable[[], str] | None = None
    if isinstance(user.get("token"), str) and user["token"]:
        fixed = user["token"]
        token = lambda: fixed  # noqa: E731
    elif isinstance(user.get("tokenFile"), str) and user["tokenFile"]:
        token = TokenFile(base / Path(user["tokenFile"]).expanduser())
    return ClusterAccess(server.rstrip("/"), context_ssl, token)


def _named(config: Mapping[str, Any], section: str, name: object, path: Path) -> Mapping[str, Any]:
    key = section[:-1]  # "contexts" -> "context"
    for entry in config.get(section) or ():
        if isinstance(entry, Mapping) and entry.get("name") == name and isinstance(entry.get(key), Mapping):
            found: Mapping[str, Any] = entry[key]
            return found
    raise NoClusterError(f"the kubeconfig {path} has no {key} named {name!r}")


def _ssl_context(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path) -> ssl.SSLContext:
    # The cluster's CA alone, when one is named (as kubectl does); else the system's CAs.
    if isinstance(cluster.get("certificate-authority-data"), str):
        cadata = base64.b64decode(cluster["certificate-authority-data"]).decode()
        context = ssl.create_default_context(cadata=cadata)
    elif isinstance(cluster.get("certificate-authority"), str):
        context = ssl.create_default_context(cafile=str(base / cluster["certificate-authority"]))
    else:
        context = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify") is True:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = user.get("client-certificate"), user.get("client-key")
    cert_data, key_data = user.get("client-certificate-data"), user.get("client-key-data")
    if isinstance(cert, str) and isinstance(key, str):
        context.load_cert_chain(str(base / cert), str(base / key))
    elif isinstance(cert_data, str) and isinstance(key_data, str):
        _load_inline_chain(context, base64.b64decode(cert_data), base64.b64decode(key_data))
    return context


def _load_inline_chain(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl reads a certificate chain only from files: a private folder, removed once loaded.
    with tempfile.TemporaryDirectory(prefix="kubeoidc-client-cert-") as folder:
        cert_file, key_file = Path(folder, "tls.crt"), Path(folder, "tls.key")
        cert_file.write_bytes(cert)
        key_file.touch(0o600)
        key_file.write_bytes(key)
        context.load_cert_chain(str(cert_file), str(key_file))
