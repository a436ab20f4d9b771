"""``kubeoidc login`` as kubectl's exec plugin, against a live provider: the ExecCredential, the token cache
(0600, reused while valid, refreshed before expiry) and the device grant's polling."""

from __future__ import annotations

import dataclasses
import stat
import threading
import webbrowser
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeoidc.cli import main
from kubeoidc.login import DEFAULT_PORTS, LoginOptions, TokenCache, credential, token_expiry
from kubeoidc_contract import DEVICE_CODE_GRANT_TYPE
from kubeoidc_provider.context import Provider
from support.device_approval import approve_device
from support.live import free_port, live_provider
from support.provider import register


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with live_provider(device_poll_interval=1, id_token_ttl=30) as provider:
        yield provider


@pytest.fixture
def options(provider: Provider, tmp_path: Path) -> LoginOptions:
    client = register(
        provider.registry, "kubectl", public=True, redirect_uris=[],
        grant_types=[DEVICE_CODE_GRANT_TYPE, "refresh_token"],
    )  # fmt: skip
    return LoginOptions(
        issuer=provider.settings.issuer,
        client_id=client.client_id,
        grant="device",
        cache_dir=tmp_path / "cache",
        refresh_before=5,  # the provider's ID tokens live 30 s here
    )


def test_the_device_grant_prints_a_code_and_the_credential_is_cached_for_the_owner_only(
    options: LoginOptions, provider: Provider
) -> None:
    prompts: list[str] = []
    helper = threading.Thread(target=approve_device, args=(prompts, provider.settings.issuer))
    helper.start()
    document = credential(options, prompts.append)
    helper.join()
    assert document["apiVersion"] == "client.authentication.k8s.io/v1"
    assert document["kind"] == "ExecCredential"
    token = document["status"]["token"]
    claims = provider.keys.verify(token)
    assert claims["email"] == "alice@example.com"
    assert document["status"]["expirationTimestamp"].endswith("Z")
    cache = TokenCache(options)
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700

    # Second call: straight from the cache, nothing printed.
    again: list[str] = []
    assert credential(options, again.append)["status"]["token"] == token
    assert again == []

    # Less left than refresh_before: the refresh token gets a new ID token, no prompt.
    eager = LoginOptions(**{**vars(options), "refresh_before": 3600})
    refreshed = credential(eager, again.append)["status"]["token"]
    assert refreshed != token
    assert again == []
    assert token_expiry(refreshed) >= token_expiry(token)


def test_without_a_browser_the_automatic_choice_signs_in_with_the_device_grant(
    options: LoginOptions, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # webbrowser.open answers False where no browser can be started (a headless machine, an SSH session).
    monkeypatch.setattr(webbrowser, "open", lambda url, *args, **kwargs: False)
    automatic = dataclasses.replace(options, grant="auto", ports=(free_port(),))
    prompts: list[str] = []
    helper = threading.Thread(target=approve_device, args=(prompts, provider.settings.issuer))
    helper.start()
    document = credential(automatic, prompts.append)
    helper.join()
    assert any("no browser can be opened here" in prompt for prompt in prompts)
    assert provider.keys.verify(document["status"]["token"])["email"] == "alice@example.com"


def test_defaults_are_kubelogins_loopback_ports() -> None:
    assert DEFAULT_PORTS == (8000, 18000)


def test_a_refused_device_grant_is_a_clear_error_on_stderr(
    provider: Provider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spa = register(provider.registry, "spa", public=True, redirect_uris=["http://localhost:8000"])
    status = main(
        [
            "login", "--issuer", provider.settings.issuer, "--client-id", spa.client_id, "--grant", "device",
            "--token-cache-dir", str(tmp_path),
        ]
    )  # fmt: skip
    assert status == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unauthorized_client" in captured.err
