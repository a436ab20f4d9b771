"""``--workers N``: forked provider processes on one port, sharing the SQLite state and the keys.

One provider runs as two workers (``support.replica`` with ``workers: 2``, as ``kubeoidc provider
--workers 2`` runs them) on a SQLite file in WAL mode. Each answer names the worker that gave it, so
the test can send the code exchange to the worker that did not issue the code.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator

import httpx2
import pytest

from kubeoidc_provider.main import ConfigurationError, run
from kubeoidc_provider.settings import ProviderSettings
from support.live import free_port
from support.objects import client_objects
from support.replica import write_config
from support.replica_process import start_replica, stop_replica, wait_ready
from support.replicas_flow import Browser, Client, RelyingParty, Replica, code_of, tokens_of

WORKER = "x-test-worker"
DEADLINE = 30.0


@pytest.fixture(scope="module")
def web_client() -> Client:
    return Client(
        client_id=f"web-app-{secrets.token_hex(4)}",
        secret=secrets.token_urlsafe(32),
        redirect_uri="https://web-app.example.com/callback",
    )


@pytest.fixture
def two_workers(web_client: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    folder = tmp_path_factory.mktemp("workers")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    objects = client_objects(
        "web-app",
        client_id=web_client.client_id,
        secret=web_client.secret,
        redirect_uris=[web_client.redirect_uri],
        issuer=issuer,
    )
    config = write_config(
        folder / "provider.json",
        issuer=issuer,
        port=port,
        storage_url=f"sqlite:///{folder}/state.db",
        clients=[objects],
        settings={"workers": 2},
    )
    replica = start_replica("workers", config, port)
    try:
        wait_ready(replica)
        yield replica
    finally:
        stop_replica(replica)


def connection_to_another_worker(replica: Replica, worker: str) -> httpx2.Client:
    """A client whose keep-alive connection was accepted by a worker other than ``worker``."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        http = httpx2.Client(timeout=10.0)
        if http.get(replica.base_url + "/.well-known/openid-configuration").headers[WORKER] != worker:
            return http
        http.close()
    raise AssertionError(f"every connection in {DEADLINE}s went to worker {worker}")


def test_a_code_issued_by_one_worker_is_redeemed_at_another(two_workers: Replica, web_client: Client) -> None:
    browser, rp = Browser(two_workers.base_url), RelyingParty(web_client)
    try:
        request = rp.auth_request()
        answer = browser.sign_in(request, two_workers)
        issuer_worker = answer.headers[WORKER]
        code = code_of(answer, web_client)

        rp.http.close()
        rp.http = connection_to_another_worker(two_workers, issuer_worker)
        exchanged = rp.exchange(two_workers, request, code)

        assert exchanged.headers[WORKER] != issuer_worker
        tokens = tokens_of(exchanged)
        assert set(tokens) >= {"access_token", "id_token", "refresh_token"}
        # The same keys in every worker: the other one's userinfo accepts the token too.
        assert rp.userinfo(two_workers, tokens["access_token"]).json()["sub"] == "7b0c2f6e-alice"
        # And the state is shared: the code is spent for both workers.
        replay = rp.exchange(two_workers, request, code)
        assert replay.status_code == 400
        assert replay.json()["error"] == "invalid_grant"
    finally:
        browser.close()
        rp.close()


def worker_pids(replica: Replica) -> set[int]:
    """Both workers' process ids, from answers on fresh connections."""
    seen: set[int] = set()
    deadline = time.monotonic() + DEADLINE
    while len(seen) < 2 and time.monotonic() < deadline:
        with httpx2.Client(timeout=10.0) as http:
            seen.add(int(http.get(replica.base_url + "/.well-known/openid-configuration").headers[WORKER]))
    assert len(seen) == 2, f"only worker(s) {seen} answered in {DEADLINE}s"
    return seen


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sigterm_to_the_provider_stops_every_worker(two_workers: Replica) -> None:
    pids = worker_pids(two_workers)

    two_workers.process.send_signal(signal.SIGTERM)

    assert two_workers.process.wait(timeout=DEADLINE) == 0
    assert wait_until(lambda: all(gone(pid) for pid in pids))


def test_a_worker_that_dies_takes_the_provider_down_so_the_pod_restarts(two_workers: Replica) -> None:
    killed, other = sorted(worker_pids(two_workers))

    os.kill(killed, signal.SIGKILL)

    assert two_workers.process.wait(timeout=DEADLINE) != 0
    assert wait_until(lambda: gone(other))


def test_workers_without_a_shared_state_store_are_refused_before_anything_starts() -> None:
    settings = ProviderSettings(issuer="http://127.0.0.1:8080", workers=2, storage_url="memory://")

    with pytest.raises(ConfigurationError, match="needs a state store the workers share"):
        run(settings)
