"""The operator when the API server is away: its calls fail at once with ``Unavailable`` (no hang, no
retries underneath), a reconcile that meets it is retried in seconds, and the key keeper tries a failed
tick again soon instead of a whole interval later."""

from __future__ import annotations

import asyncio
import http.server
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kubeoidc.local_cluster import LocalCluster
from kubeoidc_contract.cluster_access import ClusterAccess
from kubeoidc_operator.errors import Unavailable
from kubeoidc_operator.handlers import ATTEMPTS, UNAVAILABLE_RETRY, _reconcile
from kubeoidc_operator.keykeeper import KeyKeeper, keep_keys_forever
from kubeoidc_operator.keyring import KeyPolicy
from kubeoidc_operator.kube import KubeApi
from support.live import free_port


def test_a_call_to_an_api_server_that_is_away_fails_at_once_as_unavailable() -> None:
    api = KubeApi(ClusterAccess(f"http://127.0.0.1:{free_port()}"))

    with api, pytest.raises(Unavailable, match="Secret team-a/web-oidc: the API server is unreachable"):
        api.find_secret("team-a", "web-oidc")


class Overloaded(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"kind":"Status","code":503,"message":"the server is shutting down"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def overloaded_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_api_server_answering_503_is_unavailable_too(overloaded_api: str) -> None:
    api = KubeApi(ClusterAccess(overloaded_api))

    with api, pytest.raises(Unavailable, match="OIDCClient team-a/web: the API server answered 503"):
        api.get_client("team-a", "web")


class AwayReconciler:
    def reconcile(self, namespace: str, name: str, logger: Any, **_: Any) -> None:
        raise Unavailable(f"OIDCClient {namespace}/{name}: the API server answered 503 Service Unavailable")


def test_a_reconcile_that_finds_the_api_server_away_is_retried_in_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []
    _reconcile(AwayReconciler(), "team-a", "web", logging.getLogger("test"), sleep=waits.append)  # type: ignore[arg-type]

    assert waits == [UNAVAILABLE_RETRY] * ATTEMPTS
    # One warning when the API server goes away, not one per attempt.
    assert [r.levelname for r in caplog.records if "503" in r.getMessage()] == ["WARNING"]


class FlakyCluster(LocalCluster):
    """The local cluster, whose first ``failures`` reads fail as an API server outage would."""

    def __init__(self, folder: Any, failures: int) -> None:
        super().__init__(folder)
        self.failures = failures

    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.failures:
            self.failures -= 1
            raise Unavailable("the API server is unreachable")
        return super().find_secret(namespace, name)


def test_the_key_keeper_tries_a_failed_tick_again_in_a_second_not_an_interval_later(tmp_path: Any) -> None:
    cluster = FlakyCluster(tmp_path, failures=1)
    keeper = KeyKeeper(cluster, "kubeoidc", "signing-keys", KeyPolicy(alg="ES256"))

    async def run() -> None:
        task = asyncio.create_task(keep_keys_forever(keeper, interval=3600))
        try:
            for _ in range(200):  # a bound that only stops a hang: the retry comes after about 1 s
                if LocalCluster.find_secret(cluster, "kubeoidc", "signing-keys") is not None:
                    return
                await asyncio.sleep(0.05)
        finally:
            task.cancel()

    asyncio.run(run())

    assert cluster.failures == 0
    assert LocalCluster.find_secret(cluster, "kubeoidc", "signing-keys") is not None
