"""Prometheus metrics: what an operator of the provider watches (requests by outcome, registry size)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """One collector registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.token_requests = Counter(
            "kubeoidc_token_requests",
            "Token endpoint requests by grant type and outcome (ok or the OAuth error code).",
            ["grant_type", "outcome"],
            registry=self.registry,
        )
        self.authorizations = Counter(
            "kubeoidc_authorizations",
            "Authorization requests by outcome (code, login, consent, or the OAuth error code).",
            ["outcome"],
            registry=self.registry,
        )
        self.logins = Counter(
            "kubeoidc_logins", "Login attempts by outcome.", ["outcome"], registry=self.registry
        )
        self.clients = Gauge("kubeoidc_clients", "Clients served from the registry.", registry=self.registry)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
