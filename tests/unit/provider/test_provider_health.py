"""``/healthz``, ``/readyz`` and ``/metrics``: what a kubelet and a Prometheus scraper see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from kubeoidc_provider.registry import ClientRegistry
from support.provider_flow import Browser, RelyingParty, sign_in_for_tokens


def metric(text: str, name: str) -> float:
    """The value of one sample line, ``name`` including its labels."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name} in the exposition")


def test_healthz_answers_ok(http: TestClient) -> None:
    response = http.get("/healthz")

    assert response.status_code == 200
    assert response.text == "ok"


def test_readyz_answers_ok_once_the_registry_is_loaded(http: TestClient) -> None:
    assert http.get("/readyz").status_code == 200


def test_readyz_answers_503_until_the_registry_is_loaded(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> None:
    registry = ClientRegistry()
    with serve(make_provider(registry=registry)) as http:
        before = http.get("/readyz")
        alive = http.get("/healthz")
        registry.mark_ready()
        after = http.get("/readyz")

    assert before.status_code == 503
    assert before.text == "the client registry is still loading"
    assert alive.status_code == 200
    assert after.status_code == 200


def test_metrics_count_token_requests_by_grant_type_and_outcome(
    http: TestClient, browser: Browser, web_rp: RelyingParty, m2m_rp: RelyingParty
) -> None:
    sign_in_for_tokens(browser, web_rp)
    m2m_rp.token({"grant_type": "client_credentials"})
    m2m_rp.token({"grant_type": "client_credentials"}, secret="wrong")
    m2m_rp.token({"grant_type": "password"})

    response = http.get("/metrics")

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
    http: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    page = browser.get(browser.authorize(web_rp.auth_request().params).headers["location"])
    browser.login(page, "alice", "wrong")
    browser.finish(browser.login(page))

    text = http.get("/metrics").text

    assert metric(text, 'kubeoidc_authorizations_total{outcome="login"}') == 1
    assert metric(text, 'kubeoidc_authorizations_total{outcome="consent"}') == 1
    assert metric(text, 'kubeoidc_authorizations_total{outcome="code"}') == 1
    assert metric(text, 'kubeoidc_logins_total{outcome="failed"}') == 1
    assert metric(text, 'kubeoidc_logins_total{outcome="succeeded"}') == 1


def test_metrics_show_how_many_clients_are_served(
    http: TestClient, web_rp: RelyingParty, spa_rp: RelyingParty, m2m_rp: RelyingParty
) -> None:
    assert metric(http.get("/metrics").text, "kubeoidc_clients") == 3


def test_the_stylesheet_is_served_and_cacheable(http: TestClient) -> None:
    response = http.get("/static/kubeoidc.css")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "max-age" in response.headers["cache-control"]


def test_readyz_answers_503_once_the_registry_is_cut_off_from_the_api_longer_than_allowed(
    provider: Provider, http: TestClient
) -> None:
    now = [1000.0]
    provider.feed.clock = lambda: now[0]
    provider.feed.connected("Secret (all namespaces)")
    provider.feed.failed("Secret (all namespaces)")
    now[0] += provider.settings.registry_stale_after - 1
    within = http.get("/readyz")
    now[0] += 2
    past = http.get("/readyz")
    provider.feed.connected("Secret (all namespaces)")
    back = http.get("/readyz")

    assert within.status_code == 200
    assert past.status_code == 503
    assert "cut off from the Kubernetes API (Secret (all namespaces) for 61 s)" in past.text
    assert back.status_code == 200


def test_metrics_count_the_registry_feeds_failures_reconnects_and_how_long_it_is_cut_off(
    provider: Provider, http: TestClient
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

    text = http.get("/metrics").text

    assert metric(text, f'kubeoidc_registry_watch_failures_total{{stream="{stream}"}}') == 3
    assert metric(text, f'kubeoidc_registry_watch_reconnects_total{{stream="{stream}"}}') == 1
    assert metric(text, f'kubeoidc_registry_watch_relists_total{{stream="{stream}"}}') == 1
    assert metric(text, f'kubeoidc_registry_disconnected_seconds{{stream="{stream}"}}') == 7
