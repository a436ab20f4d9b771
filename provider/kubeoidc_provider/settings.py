"""The provider's configuration: typed fields, environment prefix ``KUBEOIDC_PROVIDER_``.

Built once at start (CLI flags over environment variables) and passed in explicitly; nothing reads the
environment at import time. Declared on the provider's own small settings base (``typed_settings``),
not pydantic, which cost the provider about 10 MiB of its memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from kubeoidc_contract import split_object_ref
from kubeoidc_contract.issuer import check_issuer, is_loopback_host
from kubeoidc_provider.forwarded import TrustedProxies
from kubeoidc_provider.typed_settings import Secret, Settings, SettingsError, setting

__all__ = ["ProviderSettings", "Secret", "SettingsError"]


def _issuer_is_a_url(value: str) -> str:
    # Routes are the issuer plus a path: without the trailing slash, /token is not //token.
    return check_issuer(value).rstrip("/")


def _proxies_are_addresses(value: str) -> str:
    TrustedProxies(value)  # refuses a malformed entry now, not by trusting nobody silently
    return value


def _namespace_and_name(value: str | None) -> str | None:
    if value is not None:
        split_object_ref(value)
    return value


class ProviderSettings(Settings):
    """Everything the provider can be told; each field documents its default."""

    env_prefix: ClassVar[str] = "KUBEOIDC_PROVIDER_"
    normalizers: ClassVar[dict[str, Any]] = {
        "issuer": _issuer_is_a_url,
        "forwarded_allow_ips": _proxies_are_addresses,
        "signing_keys_secret": _namespace_and_name,
    }

    #: issuer: the provider's public URL, exactly as relying parties see it (``iss`` of every token).
    issuer: str
    #: host: the address to listen on.
    host: str = "127.0.0.1"
    #: port: the port to listen on.
    port: int = setting(default=8080, ge=1, le=65535)
    #: health_port: the port of ``/healthz``, ``/readyz`` and ``/metrics`` (on ``host`` too), apart from
    #: ``port`` so that whatever routes the issuer to the public port (an Ingress) never exposes them.
    health_port: int = setting(default=9090, ge=1, le=65535)
    #: workers: how many provider processes serve the port (each with its own registry watch; the
    #: state is shared through the store, so it must be ``sqlite:///`` or ``redis://``, not memory).
    workers: int = setting(default=1, ge=1, le=64)
    #: forwarded_allow_ips: the proxies (ingress controllers) whose X-Forwarded-For and -Proto headers are
    #: believed: comma-separated addresses and CIDRs (``*`` trusts any sender). The client address, which
    #: failed logins are counted against, is the rightmost X-Forwarded-For entry that is not one of them.
    forwarded_allow_ips: str = "127.0.0.1"
    #: namespaces: where to watch OIDCClients and their Secrets; empty means every namespace.
    namespaces: list[str] = setting(default_factory=list)
    #: identity_namespace: the namespace of the IdentitySources (and their Secrets) to offer; the
    #: provider's own namespace in the chart. Unset: only the static users sign in.
    identity_namespace: str | None = None
    #: signing_keys_file: a private JWKS (a mounted Secret's ``jwks.json``), for keys managed by hand.
    signing_keys_file: Path | None = None
    #: signing_keys_secret: ``namespace/name`` of the Secret where the operator keeps the signing keys;
    #: the provider follows it, so rotated keys apply without a restart. One of the two is required.
    signing_keys_secret: str | None = None
    #: users_file: the static user directory (the Secret key ``users.yaml``).
    users_file: Path | None = None
    #: storage_url: ``memory://``, ``sqlite:///path`` (one replica) or ``redis://`` (several replicas).
    storage_url: str = "sqlite:///kubeoidc-state.db"
    #: redis_password: the password of the Redis ``storage_url`` names, when the URL carries none: a
    #: Secret's key in the environment (the chart's bundled Redis), never written into a URL or a log.
    redis_password: Secret | None = None
    #: access_token_ttl: lifetime of JWT access tokens, in seconds.
    access_token_ttl: int = setting(default=600, ge=30, le=86400)
    #: id_token_ttl: lifetime of ID tokens, in seconds.
    id_token_ttl: int = setting(default=3600, ge=30, le=86400)
    #: refresh_token_ttl: lifetime of refresh tokens (and of the grant they carry), in seconds.
    refresh_token_ttl: int = setting(default=30 * 86400, ge=60)
    #: session_ttl: how long a login session lasts, in seconds.
    session_ttl: int = setting(default=86400, ge=60)
    #: code_ttl: lifetime of an authorization code, in seconds (OAuth 2.0 Security BCP: short).
    code_ttl: int = setting(default=60, ge=5, le=600)
    #: login_attempts: failed logins allowed per user and per address in ``login_window`` seconds.
    login_attempts: int = setting(default=5, ge=1)
    #: login_window: the window, in seconds, over which failed logins are counted.
    login_window: int = setting(default=300, ge=1)
    #: registry_stale_after: seconds the client registry may be cut off from the Kubernetes API (its
    #: watches failing) before ``/readyz`` answers 503: past that, rotations and deletions may be
    #: missed. Existing clients are still served meanwhile; 0 never reports it.
    registry_stale_after: int = setting(default=60, ge=0)

    #: service_account_issuer: the ``iss`` of the cluster's ServiceAccount tokens, for a cluster whose
    #: issuer (``--service-account-issuer``) is not the one its discovery document states; empty: learned
    #: from the API server's ``/.well-known/openid-configuration``.
    service_account_issuer: str | None = None
    #: service_account_keys_refresh: how often, in seconds, the cluster's ServiceAccount token keys are
    #: fetched again (a token signed by an unknown key also asks for them, at most every 10 seconds).
    service_account_keys_refresh: int = setting(default=300, ge=10)
    #: client_assertion_uses: how many times one client assertion (one ``jti``) may authenticate during
    #: its life. A pod reuses its projected token until the kubelet renews it; 1 makes every assertion
    #: single-use (RFC 7523 §3), for clients that present a fresh token each time.
    client_assertion_uses: int = setting(default=100, ge=1)
    #: client_jwks_ca_file: a PEM bundle of certificate authorities trusted, beside the system's, for the
    #: ``jwksURI`` of ``private_key_jwt`` clients (an internal CA); TLS is verified either way.
    client_jwks_ca_file: Path | None = None
    #: device_code_ttl: how long a device authorization request (RFC 8628) waits for its user, in seconds.
    device_code_ttl: int = setting(default=600, ge=30, le=3600)
    #: device_poll_interval: the seconds a device waits between polls of the token endpoint (RFC 8628).
    device_poll_interval: int = setting(default=5, ge=1, le=60)
    #: jwks_max_age: how long (seconds) clients may cache discovery and the JWKS (``Cache-Control``).
    #: kube-apiserver reads the JWKS again only once its copy is that old, so a new signing key must be
    #: published at least this long before it signs (the operator's publish-ahead is a day).
    jwks_max_age: int = setting(default=300, ge=0, le=86400)
    #: tls_cert_file: serve HTTPS with this PEM certificate chain (with ``tls_key_file``); the files are
    #: read again when they change (cert-manager renewing a mounted Secret), without a restart.
    tls_cert_file: Path | None = None
    #: tls_key_file: the PEM private key of ``tls_cert_file``.
    tls_key_file: Path | None = None

    #: require_pkce: confidential clients must use PKCE too (RFC 9700 §2.1.1 recommends it); public
    #: clients always must. Off only for relying parties that cannot send a code challenge.
    require_pkce: bool = True
    #: body_read_timeout: seconds a request body may pause before the request is refused (408), so a
    #: client that declares more than it sends cannot hold a connection.
    body_read_timeout: float = setting(default=10.0, gt=0, le=300)

    def check(self) -> None:
        if self.health_port == self.port:
            raise ValueError(
                f"health_port and port are both {self.port}: health and metrics need a port of their own"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both, or neither")

    @property
    def signing_keys_ref(self) -> tuple[str, str] | None:
        """``signing_keys_secret`` as (namespace, name), or None when keys come from a file."""
        return split_object_ref(self.signing_keys_secret) if self.signing_keys_secret else None

    @property
    def secure_cookies(self) -> bool:
        """Cookies are ``Secure`` unless the issuer is on loopback (where browsers use plain http)."""
        return not is_loopback_host(urlsplit(self.issuer).hostname)

    @property
    def issuer_path(self) -> str:
        """The issuer's path prefix ('' for an issuer at the root): cookies are scoped to it."""
        return urlsplit(self.issuer).path
