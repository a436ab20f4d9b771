"""The provider's own Kubernetes client on a real API server, as the provider's ServiceAccount: a list
then a watch from its resourceVersion follows OIDCClients as they come and go, an expired
resourceVersion is answered 410 (the watcher lists again), a watch is cut short at once by ``stop``, and
a token file that changes is read again without a restart (the kubelet rotates a pod's token so).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import kubeoidc_contract as contract
from kubeoidc_contract.cluster_access import from_kubeconfig
from kubeoidc_provider.kube_api import ApiError, KubeApi
from support.admin import Admin, oidcclient
from support.release import Release, eventually

pytestmark = pytest.mark.cluster

SPEC = {"displayName": "Watched", "redirectURIs": ["https://watched.example.test/callback"]}


def collection(namespace: str) -> str:
    return f"/apis/{contract.GROUP}/{contract.VERSION}/namespaces/{namespace}/{contract.PLURAL}"


@pytest.fixture
def api(release: Release) -> Iterator[KubeApi]:
    client = KubeApi(from_kubeconfig(release.kubeconfigs["provider"]))
    yield client
    client.close()


class Follower:
    """A watch iterated on a thread of its own, its events collected."""

    def __init__(self, api: KubeApi, path: str, params: dict[str, str | int]) -> None:
        self.watch = api.watch(path, params, read_timeout=60)
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.watch:
                self.events.append(event)
        except BaseException as error:  # the test shows it
            self.error = error

    def seen(self, kind: str, name: str) -> bool:
        return any(e["type"] == kind and e["object"]["metadata"]["name"] == name for e in self.events)


def test_a_list_then_a_watch_from_its_version_follows_clients_as_they_come_and_go(
    api: KubeApi, admin: Admin, namespace: str
) -> None:
    listed = api.get_json(collection(namespace), {"limit": 500})
    follower = Follower(
        api,
        collection(namespace),
        {"resourceVersion": listed["metadata"]["resourceVersion"], "allowWatchBookmarks": "true"},
    )
    try:
        admin.create_client(namespace, oidcclient("watched", SPEC))
        eventually(lambda: follower.seen("ADDED", "watched"), "the watch to see the new client")
        admin.delete_client(namespace, "watched")
        eventually(lambda: follower.seen("DELETED", "watched"), "the watch to see the deletion")
    finally:
        started = time.monotonic()
        follower.watch.stop()
        follower.thread.join(10)
    assert not follower.thread.is_alive()
    assert time.monotonic() - started < 5, "stop() cuts an open watch short"
    assert follower.error is None


def test_a_watch_from_an_expired_resource_version_is_answered_410(api: KubeApi, namespace: str) -> None:
    follower = Follower(api, collection(namespace), {"resourceVersion": "1"})
    follower.thread.join(30)

    assert isinstance(follower.error, ApiError), follower.error
    assert follower.error.status == 410


def test_a_changed_token_file_is_read_again_without_a_new_client(release: Release, tmp_path: Path) -> None:
    config = yaml.safe_load(release.kubeconfigs["provider"].read_text())
    token = config["users"][0]["user"].pop("token")
    token_file = tmp_path / "token"
    token_file.write_text("not-a-token")
    config["users"][0]["user"]["tokenFile"] = str(token_file)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    api = KubeApi(from_kubeconfig(kubeconfig))
    try:
        with pytest.raises(ApiError) as refused:
            api.get_json(f"/apis/{contract.GROUP}/{contract.VERSION}/{contract.PLURAL}", {"limit": 1})
        assert refused.value.status == 401

        # As the kubelet does: the new token written aside, then moved over the old one.
        fresh = tmp_path / "token.new"
        fresh.write_text(token)
        os.replace(fresh, token_file)

        listed = api.get_json(f"/apis/{contract.GROUP}/{contract.VERSION}/{contract.PLURAL}", {"limit": 1})
        assert listed["kind"] == "OIDCClientList"
    finally:
        api.close()
