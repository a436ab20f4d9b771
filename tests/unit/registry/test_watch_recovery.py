"""The registry watcher's recovery, without an API server: one backoff policy for list and watch,
bounded and jittered; a lost connection resumes from the last resourceVersion, a 410 Gone re-lists at
once, an error answer re-lists after a wait; and the feed's health says which streams are cut off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from kubeoidc_provider.backoff import CAP, Backoff
from kubeoidc_provider.feed import FeedHealth
from kubeoidc_provider.kube_api import ApiError
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.streams import Stream
from kubeoidc_provider.watcher import RegistryWatcher

LABEL = "OIDCClient (all namespaces)"


def test_backoff_doubles_up_to_its_cap_and_starts_again_after_a_success() -> None:
    backoff = Backoff(0.2, 1.5, uniform=lambda low, high: high)

    delays = [backoff.next_delay() for _ in range(6)]
    backoff.reset()

    assert delays == [0.2, 0.4, 0.8, 1.5, 1.5, 1.5]
    assert backoff.next_delay() == 0.2


def test_backoff_jitters_each_wait_between_half_and_all_of_its_bound() -> None:
    backoff = Backoff()

    delays = [backoff.next_delay() for _ in range(200)]

    assert all(0 < delay <= CAP for delay in delays)
    assert min(delays[10:]) >= CAP / 2
    assert len(set(delays)) > 100


def test_a_backoff_refuses_an_initial_wait_above_its_cap() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(2.0, 1.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_feed_counts_a_reconnect_and_says_how_long_a_stream_was_cut_off() -> None:
    clock = Clock()
    feed = FeedHealth(clock=clock)
    feed.add(LABEL)
    feed.connected(LABEL)
    clock.now = 110.0
    feed.failed(LABEL)
    clock.now = 112.0
    feed.failed(LABEL)
    clock.now = 125.0

    cut_off = feed.disconnected_for()
    feed.connected(LABEL)

    assert cut_off == 15.0
    assert feed.disconnected_for() == 0.0
    stream = feed.snapshot()[LABEL]
    assert (stream.failures, stream.reconnects) == (2, 1)


def test_a_stream_that_never_connected_is_cut_off_since_it_was_added() -> None:
    clock = Clock()
    feed = FeedHealth(clock=clock)
    feed.add(LABEL)
    clock.now = 130.0

    assert feed.disconnected() == {LABEL: 30.0}
    feed.connected(LABEL)
    assert feed.snapshot()[LABEL].reconnects == 0


class Waits(threading.Event):
    """The watcher's stop event, recording each wait it is asked for (and never waiting)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


Step = Callable[[], Any]


def scripted_watcher(
    lists: list[Step], watches: list[Step]
) -> tuple[RegistryWatcher, Stream, Waits, list[tuple[str, str | None]]]:
    """A watcher whose list and watch requests play a script; it stops when the script runs out."""
    watcher = RegistryWatcher(ClientRegistry(), None)
    waits = Waits()
    watcher._stopping = waits
    calls: list[tuple[str, str | None]] = []

    def play(script: list[Step]) -> Any:
        if not script:
            waits.set()
            raise ConnectionResetError("the script is over")
        return script.pop(0)()

    def fake_list(stream: Stream) -> str | None:
        calls.append(("list", None))
        version: str | None = play(lists)
        watcher.health.connected(stream.label)
        return version

    def fake_watch(stream: Stream, resource_version: str | None) -> tuple[str | None, bool]:
        calls.append(("watch", resource_version))
        result: tuple[str | None, bool] = play(watches)
        return result

    watcher._list = fake_list  # type: ignore[method-assign]
    watcher._watch = fake_watch  # type: ignore[method-assign]
    noop: Callable[..., None] = lambda *_: None  # noqa: E731
    stream = Stream(
        "OIDCClient", None, "/apis/kubeoidc.io/v1alpha1/oidcclients", noop, noop, noop, lambda _: True
    )
    watcher.health.add(stream.label)
    return watcher, stream, waits, calls


def refused() -> Any:
    raise ConnectionRefusedError("Connection refused")


def gone() -> Any:
    raise ApiError(410, "Gone")


def unavailable() -> Any:
    raise ApiError(503, "Service Unavailable")


def test_a_lost_watch_resumes_from_its_resource_version_after_short_jittered_waits() -> None:
    watcher, stream, waits, calls = scripted_watcher(
        [lambda: "10"], [lambda: ("12", True), *[refused] * 5, lambda: ("15", True)]
    )

    watcher._run(stream)

    assert calls[:8] == [("list", None), ("watch", "10")] + [("watch", "12")] * 6
    assert calls[8] == ("watch", "15")
    assert len(waits.waits[:5]) == 5
    assert all(0 < wait <= CAP for wait in waits.waits)
    assert waits.waits[4] >= CAP / 2, "the waits grow while failures repeat"
    assert watcher.health.snapshot()[stream.label].reconnects == 0  # the fake watch reports no open


def test_a_410_gone_relists_at_once_and_an_error_answer_relists_after_a_wait() -> None:
    watcher, stream, waits, calls = scripted_watcher(
        [lambda: "10", lambda: "20", unavailable, lambda: "30"],
        [gone, unavailable],
    )

    watcher._run(stream)

    assert calls == [
        ("list", None),
        ("watch", "10"),  # 410: list again, no wait
        ("list", None),
        ("watch", "20"),  # 503: wait, then list again
        ("list", None),  # 503 again: a longer wait
        ("list", None),
        ("watch", "30"),
    ]
    assert len(waits.waits) == 2  # one per failed request: none after the 410
    assert waits.waits[0] <= 0.2 <= waits.waits[1]
    feed = watcher.health.snapshot()[stream.label]
    assert (feed.relists, feed.failures) == (1, 2)


def test_the_wait_starts_short_again_once_a_watch_gets_somewhere() -> None:
    watcher, stream, waits, calls = scripted_watcher(
        [lambda: "1"],
        [refused, refused, refused, refused, lambda: ("2", True), refused],
    )

    watcher._run(stream)

    assert waits.waits[3] >= 0.4  # the fourth failure in a row waits up to 1.6 s (capped at 1.5)
    assert waits.waits[4] <= 0.2  # the first failure after a watch that worked waits at most 0.2 s
    assert calls[-2:] == [("watch", "2"), ("watch", "2")]


def test_a_failed_request_marks_the_stream_cut_off_until_it_connects_again() -> None:
    watcher, stream, _, _ = scripted_watcher([lambda: "1", lambda: "2"], [unavailable])
    cut_off: list[dict[str, float]] = []
    real_list = watcher._list

    def list_and_look(stream: Stream) -> str | None:
        cut_off.append(watcher.health.disconnected())
        return real_list(stream)

    watcher._list = list_and_look  # type: ignore[method-assign]

    watcher._run(stream)

    assert list(cut_off[0]) == [stream.label]  # before the first list: never connected yet
    assert stream.label in cut_off[1]  # after the 503, before the list that reconnects
    assert watcher.health.snapshot()[stream.label].reconnects == 1


class SilentWatch:
    """A watch request that times out: before the API server accepts it (``accepts=False``: no connection,
    or no answer to the request), or after (a quiet watch)."""

    def __init__(self, accepts: bool, opened: Callable[[], None] | None) -> None:
        self._accepts = accepts
        self._opened = opened

    def __iter__(self) -> Any:
        if self._accepts and self._opened is not None:
            self._opened()
        raise TimeoutError("timed out")

    def stop(self) -> None:
        pass


class SilentApi:
    def __init__(self, *, accepts: bool) -> None:
        self.accepts = accepts

    def watch(
        self, path: str, params: Any, read_timeout: float, opened: Callable[[], None] | None = None
    ) -> SilentWatch:
        return SilentWatch(self.accepts, opened)


def test_a_watch_that_times_out_before_the_api_server_accepts_it_is_a_failure_not_a_quiet_watch() -> None:
    noop: Callable[..., None] = lambda *_: None  # noqa: E731
    stream = Stream(
        "OIDCClient", None, "/apis/kubeoidc.io/v1alpha1/oidcclients", noop, noop, noop, lambda _: True
    )
    watcher = RegistryWatcher(ClientRegistry(), None, SilentApi(accepts=False))  # type: ignore[arg-type]
    watcher.health.add(stream.label)

    # Out of reach (a dropped connection attempt, a request never answered): the failure goes to the
    # watcher's backoff and the feed's health, so readiness and the staleness guard can trip.
    with pytest.raises(TimeoutError):
        watcher._watch(stream, "5")

    # Accepted, then quiet past the read timeout: resumed from where it was.
    watcher._api = SilentApi(accepts=True)  # type: ignore[assignment]
    assert watcher._watch(stream, "5") == ("5", True)
