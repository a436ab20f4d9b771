"""People log in to a real kube-apiserver with kubeoidc.

kube-apiserver runs with the AuthenticationConfiguration ``kubeoidc cluster-config`` generates (audience:
the login client; username from a verified email; groups prefixed ``oidc:``); the provider serves HTTPS
with a CA made here. People sign in through ``kubeoidc login`` as kubectl's exec plugin, in Chromium
(code flow with a loopback redirect, and the device grant); RBAC bound to their group decides; tokens
the cluster must not take are refused with 401; signing keys rotate with no apiserver restart.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubeoidc.local_tls import ensure_local_tls
from kubeoidc.login import LoginOptions, TokenCache, token_expiry
from kubeoidc_provider.app import build_provider
from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import open_storage
from kubeoidc_provider.users import StaticUserDirectory
from support.cluster_login import (
    Kubectl,
    chromium_signs_in,
    login_user,
    register_clients,
    run_signing_in,
    start_control_plane,
    users_yaml,
)
from support.control_plane import ControlPlane, find_assets
from support.https_provider import serve_https
from support.live import free_port
from support.provider import RegisteredClient
from support.release import eventually

pytestmark = pytest.mark.cluster

NAMESPACE = "team"
#: Short, so that the exec plugin's refresh of an expired token is seen within the module's run.
ID_TOKEN_TTL = 30
LOGIN_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]
USER_IDS = {"alice": "a1-alice", "bob": "b2-bob", "carol": "c3-carol"}


@dataclass
class Cluster:
    plane: ControlPlane
    provider: Provider
    login: RegisteredClient
    other: RegisteredClient
    loopback_port: int
    root: Path
    ca_file: Path
    first_keys: dict[str, Any]

    @property
    def issuer(self) -> str:
        return self.provider.settings.issuer

    def login_args(self, cache: Path, *more: str) -> list[str]:
        return [
            "--issuer", self.issuer, "--client-id", self.login.client_id,
            "--certificate-authority", str(self.ca_file), "--no-browser",
            "--listen-port", str(self.loopback_port), "--token-cache-dir", str(cache),
            "--refresh-before", "5", *more,
        ]  # fmt: skip

    def kubectl_with_token(self, token: str, name: str) -> Kubectl:
        return Kubectl.with_user(self.plane, self.root / f"{name}.kubeconfig", {"token": token})

    def id_token(self, username: str, *, client_id: str | None = None) -> str:
        """An ID token as the provider signs it after a sign-in (the login client's, by default)."""
        user = self.provider.users.get(USER_IDS[username])
        assert user is not None
        return self.provider.minter.id_token(
            client_id=client_id or self.login.client_id,
            user_claims=user.claims(LOGIN_SCOPES),
            auth_time=int(time.time()),
            nonce=None,
            access_token=None,
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster-login")
    tls = ensure_local_tls(root / "tls")
    port = free_port()
    first_keys = generate_jwks("RS256", kid="key-1")
    users_file = root / "users.yaml"
    users_file.write_text(users_yaml())
    registry = ClientRegistry()
    registry.mark_ready()
    provider = build_provider(
        ProviderSettings(
            issuer=f"https://127.0.0.1:{port}",
            port=port,
            storage_url="memory://",
            tls_cert_file=tls.cert_file,
            tls_key_file=tls.key_file,
            id_token_ttl=ID_TOKEN_TTL,
            device_poll_interval=1,
            # kube-apiserver reads the JWKS again only when its copy is older than this: the test's
            # rotations cannot wait the default five minutes.
            jwks_max_age=0,
        ),
        registry=registry,
        users=StaticUserDirectory.from_file(users_file),
        keys=KeySet.from_jwks(first_keys),
        storage=open_storage("memory://"),
    )
    loopback_port = free_port()
    login, other = register_clients(provider, loopback_port)
    with serve_https(provider):
        plane = start_control_plane(find_assets(), root, provider.settings.issuer, login.client_id, tls)
        try:
            plane.kubectl("create", "namespace", NAMESPACE)
            plane.kubectl(
                "create", "role", "pod-reader", "-n", NAMESPACE, "--verb=get,list", "--resource=pods"
            )
            plane.kubectl(
                "create", "rolebinding", "platform-reads-pods", "-n", NAMESPACE,
                "--role=pod-reader", "--group=oidc:platform",
            )  # fmt: skip
            yield Cluster(plane, provider, login, other, loopback_port, root, tls.ca_file, first_keys)
        finally:
            plane.stop()


@pytest.fixture(scope="module")
def plugin_cache(cluster: Cluster) -> Path:
    """The token cache of the person using ``kubeoidc login`` through the whole module."""
    return cluster.root / "config" / "kubeoidc" / "tokens"


def test_a_verified_user_token_shows_username_and_prefixed_groups_in_whoami(cluster: Cluster) -> None:
    kubectl = cluster.kubectl_with_token(cluster.id_token("alice"), "alice")
    # The API server fetches the issuer's discovery and JWKS itself, once it has started.
    user = eventually(kubectl.whoami, "kube-apiserver to accept the provider's ID token")
    assert user["username"] == "alice@example.com"
    assert "oidc:platform" in user["groups"]
    assert "system:authenticated" in user["groups"]


@pytest.mark.node
@pytest.mark.browser
def test_exec_plugin_first_call_signs_in_through_chromium_with_the_code_flow(
    cluster: Cluster, plugin_cache: Path, node: str, chromium: str
) -> None:
    kubectl = Kubectl.with_user(
        cluster.plane, cluster.root / "plugin.kubeconfig", login_user(cluster.login_args(plugin_cache))
    )
    pages: list[dict[str, Any]] = []
    sign_in = chromium_signs_in(node, chromium, "alice")
    finished = run_signing_in(
        kubectl.command("get", "pods", "-n", NAMESPACE, "-o", "name"), lambda url: pages.append(sign_in(url))
    )
    assert finished.prompted, finished.stderr
    assert finished.returncode == 0, finished.stderr
    assert pages[0]["finalUrl"].startswith(f"http://localhost:{cluster.loopback_port}/?"), pages
    assert "Signed in" in pages[0]["text"]
    user = kubectl.whoami()
    assert user is not None
    assert user["username"] == "alice@example.com"
    [cached] = list(plugin_cache.iterdir())
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600


def test_exec_plugin_second_call_uses_the_cache(cluster: Cluster, plugin_cache: Path) -> None:
    kubectl = Kubectl(cluster.plane, cluster.root / "plugin.kubeconfig")
    cache = _cache(cluster, plugin_cache)
    before = cache.load()
    finished = run_signing_in(kubectl.command("auth", "whoami", "-o", "json"), _no_sign_in)
    assert finished.returncode == 0, finished.stderr
    assert not finished.prompted
    assert cache.load() == before


@pytest.mark.node
@pytest.mark.browser
def test_device_grant_approved_in_chromium_logs_in(cluster: Cluster, node: str, chromium: str) -> None:
    cache = cluster.root / "device-cache"
    kubectl = Kubectl.with_user(
        cluster.plane,
        cluster.root / "device.kubeconfig",
        login_user(cluster.login_args(cache, "--grant", "device")),
    )
    pages: list[dict[str, Any]] = []
    sign_in = chromium_signs_in(node, chromium, "alice")
    finished = run_signing_in(
        kubectl.command("auth", "whoami", "-o", "json"), lambda url: pages.append(sign_in(url))
    )
    assert finished.returncode == 0, finished.stderr
    assert "enter the code" in finished.stderr
    assert "Device connected" in pages[0]["text"]
    assert '"username": "alice@example.com"' in finished.stdout


def test_a_rolebinding_to_the_group_allows_one_thing_and_another_user_is_denied(cluster: Cluster) -> None:
    alice = cluster.kubectl_with_token(cluster.id_token("alice"), "alice")
    carol = cluster.kubectl_with_token(cluster.id_token("carol"), "carol")
    assert alice.run("get", "pods", "-n", NAMESPACE).returncode == 0
    assert alice.run("auth", "can-i", "delete", "pods", "-n", NAMESPACE).stdout.strip() == "no"
    assert carol.whoami() is not None  # carol is authenticated, only not authorized
    denied = carol.run("get", "pods", "-n", NAMESPACE)
    assert denied.returncode != 0
    assert 'User "carol@example.com" cannot list resource "pods"' in denied.stderr


def test_tokens_the_cluster_must_not_take_are_refused_with_401(cluster: Cluster) -> None:
    now = int(time.time())
    expired = cluster.provider.keys.sign(
        {
            "iss": cluster.issuer, "aud": cluster.login.client_id, "sub": "a1-alice",
            "email": "alice@example.com", "email_verified": True, "iat": now - 7200, "exp": now - 3600,
        }
    )  # fmt: skip
    stranger = KeySet.from_jwks(generate_jwks("RS256", kid="stranger"))
    unknown_key = stranger.sign(
        {
            "iss": cluster.issuer, "aud": cluster.login.client_id, "sub": "a1-alice",
            "email": "alice@example.com", "email_verified": True, "iat": now, "exp": now + 600,
        }
    )  # fmt: skip
    refused = {
        "another audience": cluster.id_token("alice", client_id=cluster.other.client_id),
        "expired": expired,
        "unknown key": unknown_key,
        "unverified email": cluster.id_token("bob"),
    }
    for what, token in refused.items():
        message = cluster.kubectl_with_token(token, what.replace(" ", "-")).refusal()
        assert "Unauthorized" in message, f"{what}: {message}"


def test_after_key_rotation_new_tokens_work_and_the_retired_key_stops_once_unpublished(
    cluster: Cluster,
) -> None:
    signing = cluster.provider.signing
    old_token = cluster.id_token("alice")
    second = generate_jwks("RS256", kid="key-2")
    # The operator's schedule: key-2 published beside key-1 and signing; key-1 still published.
    signing.replace(
        KeySet.from_jwks({"keys": cluster.first_keys["keys"] + second["keys"], "signing_kid": "key-2"})
    )
    new_token = cluster.id_token("alice")
    assert eventually(cluster.kubectl_with_token(new_token, "rotated").whoami, "a token of the new key")
    assert cluster.kubectl_with_token(old_token, "before-rotation").whoami() is not None
    # Next rotation: key-3 signs, key-1 leaves the JWKS. The API server reads the JWKS again when it
    # meets a key it does not know (key-3), and from then on key-1's tokens are refused.
    third = generate_jwks("RS256", kid="key-3")
    signing.replace(KeySet.from_jwks({"keys": second["keys"] + third["keys"], "signing_kid": "key-3"}))
    assert eventually(cluster.kubectl_with_token(cluster.id_token("alice"), "third").whoami, "key-3's token")
    # kube-apiserver remembers a token it accepted for 10 s (its token success cache): bounded wait.
    retired = cluster.kubectl_with_token(old_token, "retired")
    eventually(lambda: retired.whoami() is None, "key-1's token to be refused", interval=1)
    assert "Unauthorized" in retired.refusal()
    assert cluster.kubectl_with_token(new_token, "still-published").whoami() is not None


def test_exec_plugin_refreshes_an_expired_token_without_signing_in(
    cluster: Cluster, plugin_cache: Path
) -> None:
    cache = _cache(cluster, plugin_cache)
    before = cache.load()
    # Waits out the rest of the short ID token lifetime (at most ID_TOKEN_TTL seconds).
    eventually(
        lambda: token_expiry(before["id_token"]) < time.time(), "the cached ID token to expire", timeout=60
    )
    kubectl = Kubectl(cluster.plane, cluster.root / "plugin.kubeconfig")
    finished = run_signing_in(kubectl.command("auth", "whoami", "-o", "json"), _no_sign_in)
    assert finished.returncode == 0, finished.stderr
    assert not finished.prompted
    after = cache.load()
    assert after["id_token"] != before["id_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated on use
    assert '"username": "alice@example.com"' in finished.stdout


def _cache(cluster: Cluster, folder: Path) -> TokenCache:
    return TokenCache(
        LoginOptions(issuer=cluster.issuer, client_id=cluster.login.client_id, cache_dir=folder)
    )


def _no_sign_in(url: str) -> None:
    raise AssertionError(f"the plugin asked to sign in again at {url}")
