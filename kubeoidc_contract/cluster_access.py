"""Which Kubernetes API server the operator and the provider talk to, and how they prove who they are:
read once at start, not per call. Both run as their ServiceAccount, and reach the API server the same way.

In a pod (``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` set, the ServiceAccount's files
mounted): the API server at that address, its certificate checked against the mounted CA, and the
mounted token as bearer token. The kubelet replaces that token before it expires (an atomic swap of the
file's symlink), so :class:`TokenFile` reads it again whenever the file changed: one ``stat`` per call,
no timer.

Elsewhere (development, tests): the kubeconfig named by ``KUBECONFIG`` (its first file), else
``~/.kube/config``, its current context: the server, a CA (file or inline), and a bearer token (inline or
``tokenFile``) or a client certificate (files or inline). Credential plugins (``exec``,
``auth-provider``) are refused with a message.

The CA and the client certificate are also kept as PEM text, for a client that takes them so (kopf's
login). Nothing here logs a token.
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Where the kubelet mounts a pod's ServiceAccount token and CA.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class NoClusterError(ValueError):
    """No usable way to an API server: neither a pod's ServiceAccount nor a kubeconfig that can be used."""


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
    #: None: plain HTTP (a test API server); else the cluster's CA, or the system's CAs without one.
    ssl_context: ssl.SSLContext | None = None
    #: The bearer token for the next call; None: a TLS client certificate authenticates, or nothing.
    token: Callable[[], str] | None = None
    #: The CA and the client certificate and key as PEM text, as they came (None when not given).
    ca_pem: str | None = None
    certificate_pem: str | None = None
    private_key_pem: str | None = None
    #: The kubeconfig's ``insecure-skip-tls-verify``: the server's certificate is not checked.
    insecure: bool = False

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        """A new, unopened connection to the API server: HTTPS with ``ssl_context`` for an ``https`` URL
        (in any case), plain HTTP otherwise (a test API server). ``timeout``: seconds to connect."""
        url = urlsplit(self.server)
        host = url.hostname or "localhost"
        if url.scheme.lower() == "https":
            return http.client.HTTPSConnection(host, url.port, timeout=timeout, context=self.ssl_context)
        return http.client.HTTPConnection(host, url.port, timeout=timeout)

    @property
    def path_prefix(self) -> str:
        """The path the API is served under (an API server behind a proxy's path): empty for most."""
        return urlsplit(self.server).path.rstrip("/")


def from_environment(environ: Mapping[str, str] | None = None) -> ClusterAccess:
    """In-cluster when running in a pod, else the kubeconfig; :class:`NoClusterError` when neither."""
    environ = os.environ if environ is None else environ
    access = in_cluster(environ)
    if access is not None:
        return access
    path = kubeconfig_path(environ)
    if not path.is_file():
        raise NoClusterError(f"no Kubernetes API server: not running in a pod, and no kubeconfig at {path}")
    return from_kubeconfig(path)


def in_cluster(environ: Mapping[str, str], folder: Path = SERVICE_ACCOUNT_DIR) -> ClusterAccess | None:
    """The pod's API server and ServiceAccount, or None outside a pod."""
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    token = folder / "token"
    if not host or not port or not token.is_file():
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 Service address
    ca = (folder / "ca.crt").read_text()
    return ClusterAccess(
        server=f"https://{host}:{port}",
        ssl_context=ssl.create_default_context(cadata=ca),
        token=TokenFile(token),
        ca_pem=ca,
    )


def kubeconfig_path(environ: Mapping[str, str]) -> Path:
    """The kubeconfig kubectl would read: ``KUBECONFIG``'s first file, else ``~/.kube/config``."""
    first = next((part for part in environ.get("KUBECONFIG", "").split(os.pathsep) if part), None)
    return Path(first or "~/.kube/config").expanduser()


def from_kubeconfig(path: Path) -> ClusterAccess:
    """The current context of the kubeconfig at ``path``; its relative file names are from its folder."""
    import yaml  # here, not at start: in a pod (the ServiceAccount's access) no YAML is read at all

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
            f"the kubeconfig {path} authenticates with a plugin, which kubeoidc does not run: "
            "give it a token, a tokenFile or a client certificate"
        )
    folder = path.parent
    try:
        ca = _pem(cluster, "certificate-authority", folder)
        certificate, key = _pem(user, "client-certificate", folder), _pem(user, "client-key", folder)
    except (OSError, ValueError) as error:  # a file missing; base64, or text, that is not
        raise NoClusterError(
            f"the kubeconfig {path} names a certificate or key that cannot be read: {error}"
        ) from None
    insecure = cluster.get("insecure-skip-tls-verify") is True
    token: Callable[[], str] | None = None
    if isinstance(user.get("token"), str) and user["token"]:
        fixed: str = user["token"]
        token = lambda: fixed  # noqa: E731
    elif isinstance(user.get("tokenFile"), str) and user["tokenFile"]:
        token = TokenFile(folder / Path(user["tokenFile"]).expanduser())
    context_ssl = None
    if server.lower().startswith("https://"):
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


def _named(config: Mapping[str, Any], section: str, name: object, path: Path) -> Mapping[str, Any]:
    key = section[:-1]  # "contexts" holds entries with a "context"
    for entry in config.get(section) or ():
        if isinstance(entry, Mapping) and entry.get("name") == name and isinstance(entry.get(key), Mapping):
            found: Mapping[str, Any] = entry[key]
            return found
    raise NoClusterError(f"the kubeconfig {path} has no {key} named {name!r}")


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
    # The cluster's CA alone, when one is named (as kubectl does); else the system's CAs.
    context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certificate and key:
        # ssl loads a certificate chain from files only: written to a private folder, gone once loaded.
        with tempfile.TemporaryDirectory(prefix="kubeoidc-client-cert-") as folder:
            cert_file, key_file = Path(folder, "tls.crt"), Path(folder, "tls.key")
            cert_file.write_text(certificate)
            key_file.touch(0o600)
            key_file.write_text(key)
            context.load_cert_chain(str(cert_file), str(key_file))
    return context
