"""The provider's own Kubernetes client against the kmock API server, for what a healthy cluster rarely
shows: an error answer becomes an ``ApiError`` with the API's status and message, a watch's ``ERROR``
event (410: the resourceVersion expired) one with the event's code, and the bearer token is read from
its file again once the file has changed. The client blocks: the tests call it from a worker thread, so
that kmock, on the test's event loop, can answer.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kmock as kmock_lib
import pytest

from kubeoidc_contract.cluster_access import ClusterAccess, TokenFile
from kubeoidc_provider.kube_api import ApiError, KubeApi
from support.kmock_api import CLIENTS, declare_oidcclients, load_builtins

pytestmark = pytest.mark.kmock

PATH = "/apis/kubeoidc.io/v1alpha1/oidcclients"


@pytest.fixture
def server(kmock: kmock_lib.KubernetesEmulator) -> kmock_lib.KubernetesEmulator:
    load_builtins(kmock)
    declare_oidcclients(kmock)
    return kmock


@pytest.fixture
def client(server: kmock_lib.KubernetesEmulator) -> Iterator[Callable[..., KubeApi]]:
    """Clients of the kmock API server (with a token file, or none), closed after the test."""
    made: list[KubeApi] = []

    def make(token: TokenFile | None = None) -> KubeApi:
        made.append(KubeApi(ClusterAccess(str(server.url).rstrip("/"), None, token)))
        return made[-1]

    yield make
    for api in made:
        api.close()


def status(code: int, message: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code, "message": message}


async def test_an_error_answer_raises_api_error_with_the_status_and_the_apis_message(
    server: kmock_lib.KubernetesEmulator, client: Callable[..., KubeApi]
) -> None:
    server["list", CLIENTS][:1] << 403 << status(403, "oidcclients is forbidden: User cannot list")
    api = client()

    with pytest.raises(ApiError) as refused:
        await asyncio.to_thread(api.get_json, PATH)

    assert refused.value.status == 403
    assert refused.value.reason == "oidcclients is forbidden: User cannot list"
    listed = await asyncio.to_thread(api.get_json, PATH)  # the next answer is the normal one
    assert listed["items"] == []


async def test_a_watch_error_event_raises_api_error_with_the_events_code(
    server: kmock_lib.KubernetesEmulator, client: Callable[..., KubeApi]
) -> None:
    server["watch", CLIENTS][:1] << ({"type": "ERROR", "object": status(410, "too old resource version")},)
    watch = client().watch(PATH, {"resourceVersion": "1"}, read_timeout=5)

    with pytest.raises(ApiError) as expired:
        await asyncio.to_thread(list, watch)

    assert (expired.value.status, expired.value.reason) == (410, "too old resource version")


async def test_the_bearer_token_is_read_again_once_its_file_changed(
    server: kmock_lib.KubernetesEmulator, client: Callable[..., KubeApi], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    api = client(TokenFile(token_file))
    lists = server["list", CLIENTS]

    await asyncio.to_thread(api.get_json, PATH)
    fresh = tmp_path / "token.new"
    fresh.write_text("second-token\n")
    os.replace(fresh, token_file)
    await asyncio.to_thread(api.get_json, PATH)

    sent = [request.headers.get("Authorization") for request in lists]
    assert sent == ["Bearer first-token", "Bearer second-token"]
