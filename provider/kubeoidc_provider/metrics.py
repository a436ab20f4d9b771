"""Prometheus metrics: what an operator of the provider watches (requests by outcome, registry size, the
registry's feed from the Kubernetes API)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kubeoidc_provider.feed import FeedHealth

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

    def observe_feed(self, feed: FeedHealth) -> None:
        """Report the registry's feed (its counts live in ``feed``, read at each scrape)."""
        self.registry.register(_FeedCollector(feed))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _FeedCollector(Collector):
    def __init__(self, feed: FeedHealth) -> None:
        self._feed = feed

    def collect(self) -> Iterator[Metric]:
        streams = self._feed.snapshot()
        cut_off = self._feed.disconnected()
        counters = {
            "failures": "Failed list or watch requests to the Kubernetes API, by stream.",
            "reconnects": "Times a stream got its connection to the Kubernetes API back, by stream.",
            "relists": "Re-lists forced by an expired resourceVersion (410 Gone), by stream.",
        }
        for name, documentation in counters.items():
            family = CounterMetricFamily(f"kubeoidc_registry_watch_{name}", documentation, labels=["stream"])
            for label, stream in streams.items():
                family.add_metric([label], getattr(stream, name))
            yield family
        disconnected = GaugeMetricFamily(
            "kubeoidc_registry_disconnected_seconds",
            "Seconds a stream has been cut off from the Kubernetes API (0: connected): how stale the "
            "client registry may be.",
            labels=["stream"],
        )
        for label in streams:
            disconnected.add_metric([label], cut_off.get(label, 0.0))
        yield disconnected
