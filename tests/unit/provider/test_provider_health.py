"""``/healthz``, ``/readyz`` and ``/metrics`` on the health port: what a kubelet and a Prometheus scraper
see; and that the public port does not serve them."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.app import create_app, create_health_app
from kubeoidc_provider.context import Provider
from kubeoidc_provider.main import listening_server
from kubeoidc_provider.registry import ClientRegistry
from support.live import free_port
from support.provider_flow import Browser, RelyingParty, sign_in_for_tokens


@pytest.fixture
def probes(provider: Provider) -> Iterator[TestClient]:
    """The health port's app (``main.serve`` puts it on a port of its own)."""
    with TestClient(create_health_app(provider)) as client:
        yield client


def metric(text: str, name: str) -> float:
    """The value of one sample line, ``name`` including its labels."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name} in the exposition")


def test_healthz_answers_ok(probes: TestClient) -> None:
    response = probes.get("/healthz")

    assert response.status_code == 200
    assert response.text == "ok"


def test_readyz_answers_ok_once_the_registry_is_loaded(probes: TestClient) -> None:
    assert probes.get("/readyz").status_code == 200


def test_readyz_answers_503_until_the_registry_is_loaded(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> None:
    registry = ClientRegistry()
    with TestClient(create_health_app(make_provider(registry=registry))) as probes:
        before = probes.get("/readyz")
        alive = probes.get("/healthz")
        registry.mark_ready()
        after = probes.get("/readyz")

    assert before.status_code == 503
    assert before.text == "the client registry is still loading"
    assert alive.status_code == 200
    assert after.status_code == 200


def test_metrics_count_token_requests_by_grant_type_and_outcome(
    probes: TestClient, browser: Browser, web_rp: RelyingParty, m2m_rp: RelyingParty
) -> None:
    sign_in_for_tokens(browser, web_rp)
    m2m_rp.token({"grant_type": "client_credentials"})
    m2m_rp.token({"grant_type": "client_credentials"}, secret="wrong")
    m2m_rp.token({"grant_type": "password"})

    response = probes.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, 'kubeoidc_token_requests_total{grant_type="authorization_code",outcome="ok"}') == 1
    assert metric(text, 'kubeoidc_token_requests_total{grant_type="client_credentials",outcome="ok"}') == 1
    assert (
        metric(
            text, 'kubeoidc_token_requests_total{grant_type="client_credentials",outcome="invalid_client"}'
        )
        == 1
    )
    assert (
        metric(text, 'kubeoidc_token_requests_total{grant_type="unknown",outcome="unsupported_grant_type"}')
        == 1
    )


def test_metrics_count_authorizations_and_logins(
    probes: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    page = browser.get(browser.authorize(web_rp.auth_request().params).headers["location"])
    browser.login(page, "alice", "wrong")
    browser.finish(browser.login(page))

    text = probes.get("/metrics").text

    assert metric(text, 'kubeoidc_authorizations_total{outcome="login"}') == 1
    assert metric(text, 'kubeoidc_authorizations_total{outcome="consent"}') == 1
    assert metric(text, 'kubeoidc_authorizations_total{outcome="code"}') == 1
    assert metric(text, 'kubeoidc_logins_total{outcome="failed"}') == 1
    assert metric(text, 'kubeoidc_logins_total{outcome="succeeded"}') == 1


def test_metrics_show_how_many_clients_are_served(
    probes: TestClient, web_rp: RelyingParty, spa_rp: RelyingParty, m2m_rp: RelyingParty
) -> None:
    assert metric(probes.get("/metrics").text, "kubeoidc_clients") == 3


def test_metrics_are_written_in_prometheus_text_format_with_escaped_labels_and_created_times(
    provider: Provider, probes: TestClient
) -> None:
    provider.metrics.token_requests.labels("client_credentials", "ok").inc()
    provider.metrics.logins.labels('a "quoted" \\ outcome\non two lines').inc(2)
    provider.feed.clock = lambda: 1000.0
    provider.feed.connected("Secret (all namespaces)")
    before = time.time()

    response = probes.get("/metrics")

    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    created = re.compile(r"^(kubeoidc_\w+_created\{[^}]*\}) (\d\.\d+e\+09)$", re.MULTILINE)
    times = [float(value) for _, value in created.findall(response.text)]
    assert len(times) == 2
    assert all(before - 60 < value <= before for value in times)
    assert created.sub(r"\1 TIME", response.text) == (
        "# HELP kubeoidc_token_requests_total Token endpoint requests by grant type and outcome (ok or the"
        " OAuth error code).\n"
        "# TYPE kubeoidc_token_requests_total counter\n"
        'kubeoidc_token_requests_total{grant_type="client_credentials",outcome="ok"} 1.0\n'
        "# HELP kubeoidc_token_requests_created Token endpoint requests by grant type and outcome (ok or"
        " the OAuth error code).\n"
        "# TYPE kubeoidc_token_requests_created gauge\n"
        'kubeoidc_token_requests_created{grant_type="client_credentials",outcome="ok"} TIME\n'
        "# HELP kubeoidc_authorizations_total Authorization requests by outcome (code, login, consent, or"
        " the OAuth error code).\n"
        "# TYPE kubeoidc_authorizations_total counter\n"
        "# HELP kubeoidc_logins_total Login attempts by outcome.\n"
        "# TYPE kubeoidc_logins_total counter\n"
        'kubeoidc_logins_total{outcome="a \\"quoted\\" \\\\ outcome\\non two lines"} 2.0\n'
        "# HELP kubeoidc_logins_created Login attempts by outcome.\n"
        "# TYPE kubeoidc_logins_created gauge\n"
        'kubeoidc_logins_created{outcome="a \\"quoted\\" \\\\ outcome\\non two lines"} TIME\n'
        "# HELP kubeoidc_clients Clients served from the registry.\n"
        "# TYPE kubeoidc_clients gauge\n"
        f"kubeoidc_clients {float(len(provider.registry))}\n"
        "# HELP kubeoidc_registry_watch_failures_total Failed list or watch requests to the Kubernetes"
        " API, by stream.\n"
        "# TYPE kubeoidc_registry_watch_failures_total counter\n"
        'kubeoidc_registry_watch_failures_total{stream="Secret (all namespaces)"} 0.0\n'
        "# HELP kubeoidc_registry_watch_reconnects_total Times a stream got its connection to the"
        " Kubernetes API back, by stream.\n"
        "# TYPE kubeoidc_registry_watch_reconnects_total counter\n"
        'kubeoidc_registry_watch_reconnects_total{stream="Secret (all namespaces)"} 0.0\n'
        "# HELP kubeoidc_registry_watch_relists_total Re-lists forced by an expired resourceVersion (410"
        " Gone), by stream.\n"
        "# TYPE kubeoidc_registry_watch_relists_total counter\n"
        'kubeoidc_registry_watch_relists_total{stream="Secret (all namespaces)"} 0.0\n'
        "# HELP kubeoidc_registry_disconnected_seconds Seconds a stream has been cut off from the"
        " Kubernetes API (0: connected): how stale the client registry may be.\n"
        "# TYPE kubeoidc_registry_disconnected_seconds gauge\n"
        'kubeoidc_registry_disconnected_seconds{stream="Secret (all namespaces)"} 0.0\n'
    )


def test_the_stylesheet_is_served_and_cacheable(http: TestClient) -> None:
    response = http.get("/static/kubeoidc.css")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "max-age" in response.headers["cache-control"]


def test_readyz_answers_503_once_the_registry_is_cut_off_from_the_api_longer_than_allowed(
    provider: Provider, probes: TestClient
) -> None:
    now = [1000.0]
    provider.feed.clock = lambda: now[0]
    provider.feed.connected("Secret (all namespaces)")
    provider.feed.failed("Secret (all namespaces)")
    now[0] += provider.settings.registry_stale_after - 1
    within = probes.get("/readyz")
    now[0] += 2
    past = probes.get("/readyz")
    provider.feed.connected("Secret (all namespaces)")
    back = probes.get("/readyz")

    assert within.status_code == 200
    assert past.status_code == 503
    assert "cut off from the Kubernetes API (Secret (all namespaces) for 61 s)" in past.text
    assert back.status_code == 200


def test_metrics_count_the_registry_feeds_failures_reconnects_and_how_long_it_is_cut_off(
    provider: Provider, probes: TestClient
) -> None:
    now = [1000.0]
    provider.feed.clock = lambda: now[0]
    stream = "OIDCClient (all namespaces)"
    provider.feed.connected(stream)
    provider.feed.failed(stream)
    provider.feed.failed(stream)
    provider.feed.connected(stream)
    provider.feed.relisted(stream)
    provider.feed.failed(stream)
    now[0] += 7

    text = probes.get("/metrics").text

    assert metric(text, f'kubeoidc_registry_watch_failures_total{{stream="{stream}"}}') == 3
    assert metric(text, f'kubeoidc_registry_watch_reconnects_total{{stream="{stream}"}}') == 1
    assert metric(text, f'kubeoidc_registry_watch_relists_total{{stream="{stream}"}}') == 1
    assert metric(text, f'kubeoidc_registry_disconnected_seconds{{stream="{stream}"}}') == 7


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_public_port_does_not_serve_health_or_metrics(http: TestClient, path: str) -> None:
    assert http.get(path).status_code == 404


def test_a_served_provider_answers_probes_on_the_health_port_only(
    make_provider: Callable[..., Provider],
) -> None:
    port, health_port = free_port(), free_port()
    provider = make_provider(issuer=f"http://127.0.0.1:{port}", port=port, health_port=health_port)
    server, sockets = listening_server(
        create_app(provider), provider.settings, health_app=create_health_app(provider), log_level="WARNING"
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "the provider stopped"
            assert time.monotonic() < deadline, "the provider did not start"
            time.sleep(0.01)
        public, health = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{health_port}"

        assert httpx.get(f"{health}/readyz").text == "ok"
        assert "kubeoidc_clients" in httpx.get(f"{health}/metrics").text
        assert httpx.get(f"{public}/readyz").status_code == 404
        assert httpx.get(f"{public}/metrics").status_code == 404
        assert httpx.get(f"{public}/.well-known/openid-configuration").status_code == 200
        assert httpx.get(f"{health}/.well-known/openid-configuration").status_code == 404
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for sock in sockets:
            sock.close()
