"""Prometheus metrics: what an operator of the provider watches (requests by outcome, registry size, the
registry's feed from the Kubernetes API).

The exposition is Prometheus's text format, version 0.0.4, written here: a handful of counters and one
gauge need no client library (prometheus-client, with the HTTP and WSGI servers it imports, cost the
provider about 1.5 MiB of memory). What a scraper reads is what prometheus-client wrote: the same names,
types, help texts and labels, each counter with its ``_total`` sample and its ``_created`` time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from kubeoidc_provider.feed import FeedHealth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_FEED_COUNTERS = {
    "failures": "Failed list or watch requests to the Kubernetes API, by stream.",
    "reconnects": "Times a stream got its connection to the Kubernetes API back, by stream.",
    "relists": "Re-lists forced by an expired resourceVersion (410 Gone), by stream.",
}
_DISCONNECTED_HELP = (
    "Seconds a stream has been cut off from the Kubernetes API (0: connected): how stale the client "
    "registry may be."
)


class CounterChild:
    """One labelled series of a counter: only ever goes up."""

    __slots__ = ("_lock", "created", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        # The token endpoint's worker threads count too: += on a float is not atomic.
        with self._lock:
            self.value += amount


class Counter:
    """A counter family: its series by label values, in the order they were first used."""

    def __init__(self, name: str, documentation: str, label_names: tuple[str, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.label_names = label_names
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], CounterChild] = {}

    def labels(self, *values: str) -> CounterChild:
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name} takes the labels {', '.join(self.label_names)}")
        with self._lock:
            child = self._children.get(values)
            if child is None:
                child = self._children[values] = CounterChild(self._lock)
            return child

    def exposition(self) -> str:
        with self._lock:
            series = [(values, child.value, child.created) for values, child in self._children.items()]
        counted = [(self._labels(values), value) for values, value, _ in series]
        created = [(self._labels(values), when) for values, _, when in series]
        return _family(f"{self.name}_total", "counter", self.documentation, counted) + (
            _family(f"{self.name}_created", "gauge", self.documentation, created) if series else ""
        )

    def _labels(self, values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        return tuple(zip(self.label_names, values, strict=True))


class Gauge:
    """A gauge without labels, set to its current value before each scrape."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def exposition(self) -> str:
        return _family(self.name, "gauge", self.documentation, [((), self.value)])


class Metrics:
    """The metrics of one app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.token_requests = Counter(
            "kubeoidc_token_requests",
            "Token endpoint requests by grant type and outcome (ok or the OAuth error code).",
            ("grant_type", "outcome"),
        )
        self.authorizations = Counter(
            "kubeoidc_authorizations",
            "Authorization requests by outcome (code, login, consent, or the OAuth error code).",
            ("outcome",),
        )
        self.logins = Counter("kubeoidc_logins", "Login attempts by outcome.", ("outcome",))
        self.clients = Gauge("kubeoidc_clients", "Clients served from the registry.")
        self._feed: FeedHealth | None = None

    def observe_feed(self, feed: FeedHealth) -> None:
        """Report the registry's feed (its counts live in ``feed``, read at each scrape)."""
        self._feed = feed

    def exposition(self) -> bytes:
        parts = [
            self.token_requests.exposition(),
            self.authorizations.exposition(),
            self.logins.exposition(),
            self.clients.exposition(),
        ]
        if self._feed is not None:
            parts.append(_feed_exposition(self._feed))
        return "".join(parts).encode()


def _feed_exposition(feed: FeedHealth) -> str:
    streams = feed.snapshot()
    cut_off = feed.disconnected()
    parts = [
        _family(
            f"kubeoidc_registry_watch_{name}_total",
            "counter",
            documentation,
            [((("stream", label),), float(getattr(stream, name))) for label, stream in streams.items()],
        )
        for name, documentation in _FEED_COUNTERS.items()
    ]
    disconnected = [((("stream", label),), cut_off.get(label, 0.0)) for label in streams]
    parts.append(_family("kubeoidc_registry_disconnected_seconds", "gauge", _DISCONNECTED_HELP, disconnected))
    return "".join(parts)


def _family(
    name: str,
    kind: str,
    documentation: str,
    samples: Iterable[tuple[tuple[tuple[str, str], ...], float]],
) -> str:
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    lines = [f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"]
    for labels, value in samples:
        if labels:
            pairs = ",".join(f'{label}="{_label_value(text)}"' for label, text in labels)
            lines.append(f"{name}{{{pairs}}} {_number(value)}\n")
        else:
            lines.append(f"{name} {_number(value)}\n")
    return "".join(lines)


def _label_value(text: str) -> str:
    """Escaped as the text format requires: backslash, double quote and line feed."""
    return text.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    point = text.find(".")
    # Go (and so every other Prometheus client) writes seven or more integer digits with an exponent.
    if value > 0 and point > 6:
        digits = (text[:point] + text[point + 1 :]).rstrip("0")
        mantissa = digits[0] + "." + digits[1:] if len(digits) > 1 else digits
        return f"{mantissa}e+{point - 1:02d}"
    return text
