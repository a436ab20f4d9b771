"""A person approving a device (RFC 8628) over plain HTTP: the device page, the login and consent forms;
and a whole device grant run by ``kubeoidc login``'s own client code against a live provider."""

from __future__ import annotations

import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from kubeoidc.login import LoginOptions, credential
from kubeoidc_contract import DEVICE_CODE_GRANT_TYPE
from kubeoidc_provider.context import Provider
from support.provider import PASSWORD, register


def approve_device(prompts: list[str], issuer: str, username: str = "alice") -> str:
    """Wait for the printed ``verification_uri_complete``, then confirm, sign in and allow; the last page."""
    deadline = time.monotonic() + 10
    while not any("or open " in prompt for prompt in prompts) and time.monotonic() < deadline:
        time.sleep(0.05)
    (printed,) = [prompt for prompt in prompts if "or open " in prompt]
    complete = printed.split("or open ", 1)[1].strip()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())

    def post(url: str, page: str, **fields: str) -> str:
        for name in ("csrf_token", "interaction"):
            marker = f'name="{name}" value="'
            if marker in page:
                fields[name] = page.split(marker, 1)[1].split('"', 1)[0]
        with opener.open(url, urllib.parse.urlencode(fields).encode()) as answer:
            return str(answer.read().decode())

    with opener.open(complete) as answer:
        page = answer.read().decode()
    code = complete.rsplit("user_code=", 1)[1]
    page = post(f"{issuer}/device", page, user_code=code)
    page = post(f"{issuer}/login", page, username=username, password=PASSWORD)
    return post(f"{issuer}/consent", page, decision="allow")


def device_grant_succeeds(provider: Provider) -> bool:
    """Whether a public client gets an ID token through the device grant, approved by a person."""
    client = register(
        provider.registry, "device", public=True, redirect_uris=[], grant_types=[DEVICE_CODE_GRANT_TYPE]
    )
    prompts: list[str] = []
    helper = threading.Thread(target=approve_device, args=(prompts, provider.settings.issuer), daemon=True)
    helper.start()
    with tempfile.TemporaryDirectory() as cache:
        options = LoginOptions(
            issuer=provider.settings.issuer,
            client_id=client.client_id,
            scopes=("openid",),
            grant="device",
            cache_dir=Path(cache),
        )
        document = credential(options, prompts.append)
    helper.join(timeout=10)
    return bool(document["status"]["token"])
