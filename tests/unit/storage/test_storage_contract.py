"""The storage contract: one suite, run against memory, SQLite (both consume paths) and Redis."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from kubeoidc_provider.storage import Consumed, Storage

if TYPE_CHECKING:
    from conftest import Backend

T = TypeVar("T")


def race(threads: int, action: Callable[[], T]) -> list[T]:
    """Run ``action`` in ``threads`` threads released at the same moment; return every result."""
    barrier = threading.Barrier(threads)

    def run() -> T:
        barrier.wait(timeout=10)
        return action()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run) for _ in range(threads)]
        return [f.result(timeout=30) for f in futures]


def test_backend_satisfies_the_storage_protocol(backend: Backend) -> None:
    assert isinstance(backend.storage, Storage)


def test_put_then_get_returns_the_value(backend: Backend) -> None:
    backend.storage.put("session", "k1", {"sub": "u1", "auth_time": 1700000000}, ttl=60)
    assert backend.storage.get("session", "k1") == {"sub": "u1", "auth_time": 1700000000}


def test_get_of_an_absent_key_is_none(backend: Backend) -> None:
    assert backend.storage.get("session", "nope") is None


def test_values_round_trip_as_json(backend: Backend) -> None:
    value: dict[str, Any] = {
        "str": 'héllo ✓ "quoted" \\ \n',
        "int": 2**53,
        "float": 1.5,
        "true": True,
        "false": False,
        "null": None,
        "list": [1, "two", [3.0], {"four": 4}],
        "tuple": ("a", "b"),
        "nested": {"scopes": ["openid", "profile"], "claims": {"email": None}},
        "": "empty key",
    }
    backend.storage.put("code", "k", value, ttl=60)
    expected = dict(value, tuple=["a", "b"])
    assert backend.storage.get("code", "k") == expected
    found = backend.storage.consume("code", "k")
    assert found == Consumed(expected, first=True)


@pytest.mark.parametrize(
    "value",
    [{"a": {1, 2}}, {"a": b"bytes"}, {"a": math.nan}, {"a": object()}, ["not", "a", "mapping"]],
    ids=["set", "bytes", "nan", "object", "list"],
)
def test_a_value_json_cannot_carry_is_refused_on_put(backend: Backend, value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        backend.storage.put("code", "k", value, ttl=60)
    assert backend.storage.get("code", "k") is None


def test_get_returns_a_copy_that_the_caller_may_change(backend: Backend) -> None:
    original = {"scopes": ["openid"]}
    backend.storage.put("consent", "k", original, ttl=60)
    original["scopes"].append("changed after put")
    first = backend.storage.get("consent", "k")
    assert first == {"scopes": ["openid"]}
    first["scopes"].append("changed after get")
    assert backend.storage.get("consent", "k") == {"scopes": ["openid"]}


def test_kinds_are_separate_namespaces(backend: Backend) -> None:
    backend.storage.put("code", "same", {"kind": "code"}, ttl=60)
    backend.storage.put("refresh", "same", {"kind": "refresh"}, ttl=60)
    assert backend.storage.get("code", "same") == {"kind": "code"}
    assert backend.storage.get("refresh", "same") == {"kind": "refresh"}
    backend.storage.delete("code", "same")
    assert backend.storage.get("refresh", "same") == {"kind": "refresh"}


def test_keys_may_hold_any_characters(backend: Backend) -> None:
    for key in ("a:b", "a*b?[c]", "ключ", "", " spaced "):
        backend.storage.put("session", key, {"key": key}, ttl=60)
    for key in ("a:b", "a*b?[c]", "ключ", "", " spaced "):
        assert backend.storage.get("session", key) == {"key": key}


@pytest.mark.parametrize("kind", ["", "a:b"])
def test_a_kind_that_could_collide_is_refused(backend: Backend, kind: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        backend.storage.put(kind, "k", {}, ttl=60)
    with pytest.raises(ValueError, match="kind"):
        backend.storage.get(kind, "k")


def test_put_replaces_the_value(backend: Backend) -> None:
    backend.storage.put("session", "k", {"v": 1}, ttl=60)
    backend.storage.put("session", "k", {"v": 2}, ttl=60)
    assert backend.storage.get("session", "k") == {"v": 2}


def test_delete_removes_the_entry_and_deleting_an_absent_one_is_fine(backend: Backend) -> None:
    backend.storage.put("session", "k", {"v": 1}, ttl=60)
    backend.storage.delete("session", "k")
    assert backend.storage.get("session", "k") is None
    assert backend.storage.consume("session", "k") is None
    backend.storage.delete("session", "k")
    backend.storage.delete("session", "never-there")


@pytest.mark.parametrize("ttl", [0, -1, 1.5, True, "60"])
def test_a_ttl_that_is_not_a_positive_whole_number_is_refused(backend: Backend, ttl: Any) -> None:
    with pytest.raises(ValueError, match="ttl"):
        backend.storage.put("session", "k", {}, ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        backend.storage.incr("attempts", "k", ttl=ttl)
    assert backend.storage.get("session", "k") is None


def test_an_entry_lives_until_its_ttl_ends(backend: Backend) -> None:
    backend.storage.put("session", "k", {"v": 1}, ttl=1)
    assert backend.storage.get("session", "k") == {"v": 1}
    backend.elapse(0.5)
    assert backend.storage.get("session", "k") == {"v": 1}
    backend.elapse(0.6)
    assert backend.storage.get("session", "k") is None
    assert backend.storage.consume("session", "k") is None


def test_put_again_gives_a_fresh_ttl(backend: Backend) -> None:
    backend.storage.put("session", "k", {"v": 1}, ttl=1)
    backend.elapse(0.6)
    backend.storage.put("session", "k", {"v": 2}, ttl=1)
    backend.elapse(0.6)
    assert backend.storage.get("session", "k") == {"v": 2}


def test_consume_returns_first_then_replays_until_the_ttl_ends(backend: Backend) -> None:
    backend.storage.put("code", "k", {"client_id": "app"}, ttl=1)
    assert backend.storage.consume("code", "k") == Consumed({"client_id": "app"}, first=True)
    assert backend.storage.consume("code", "k") == Consumed({"client_id": "app"}, first=False)
    assert backend.storage.consume("code", "k") == Consumed({"client_id": "app"}, first=False)
    backend.elapse(1.1)
    assert backend.storage.consume("code", "k") is None


def test_consume_of_an_absent_key_is_none(backend: Backend) -> None:
    assert backend.storage.consume("code", "nope") is None


def test_a_consumed_entry_can_still_be_read(backend: Backend) -> None:
    backend.storage.put("refresh", "k", {"grant": "g1"}, ttl=60)
    backend.storage.consume("refresh", "k")
    assert backend.storage.get("refresh", "k") == {"grant": "g1"}


def test_put_over_a_consumed_entry_makes_it_unused_again(backend: Backend) -> None:
    backend.storage.put("code", "k", {"v": 1}, ttl=60)
    backend.storage.consume("code", "k")
    backend.storage.put("code", "k", {"v": 2}, ttl=60)
    assert backend.storage.consume("code", "k") == Consumed({"v": 2}, first=True)


def test_consume_does_not_extend_the_ttl(backend: Backend) -> None:
    backend.storage.put("code", "k", {"v": 1}, ttl=1)
    backend.elapse(0.6)
    assert backend.storage.consume("code", "k") == Consumed({"v": 1}, first=True)
    backend.elapse(0.5)
    assert backend.storage.consume("code", "k") is None


def test_concurrent_consumers_see_exactly_one_first_use(backend: Backend) -> None:
    backend.storage.put("code", "k", {"v": 1}, ttl=60)
    results = race(20, lambda: backend.storage.consume("code", "k"))
    assert all(r is not None and r.value == {"v": 1} for r in results)
    assert sum(1 for r in results if r is not None and r.first) == 1


def test_incr_counts_from_one(backend: Backend) -> None:
    assert [backend.storage.incr("attempts", "alice", ttl=60) for _ in range(3)] == [1, 2, 3]


def test_incr_counts_each_key_and_kind_apart(backend: Backend) -> None:
    backend.storage.incr("attempts", "alice", ttl=60)
    backend.storage.incr("attempts", "alice", ttl=60)
    assert backend.storage.incr("attempts", "bob", ttl=60) == 1
    assert backend.storage.incr("ip-attempts", "alice", ttl=60) == 1


def test_incr_window_starts_at_the_first_incr_and_is_not_extended(backend: Backend) -> None:
    assert backend.storage.incr("attempts", "alice", ttl=1) == 1
    backend.elapse(0.6)
    assert backend.storage.incr("attempts", "alice", ttl=1) == 2
    backend.elapse(0.5)
    assert backend.storage.incr("attempts", "alice", ttl=1) == 1
    assert backend.storage.incr("attempts", "alice", ttl=1) == 2


def test_counters_and_entries_with_the_same_key_do_not_meet(backend: Backend) -> None:
    backend.storage.put("attempts", "alice", {"v": 1}, ttl=60)
    assert backend.storage.incr("attempts", "alice", ttl=60) == 1
    assert backend.storage.get("attempts", "alice") == {"v": 1}
    assert backend.storage.consume("attempts", "alice") == Consumed({"v": 1}, first=True)


def test_delete_resets_a_counter(backend: Backend) -> None:
    backend.storage.incr("attempts", "alice", ttl=60)
    backend.storage.incr("attempts", "alice", ttl=60)
    backend.storage.delete("attempts", "alice")
    assert backend.storage.incr("attempts", "alice", ttl=60) == 1


def test_delete_removes_the_entry_and_the_counter_of_one_kind_and_key_only(backend: Backend) -> None:
    backend.storage.put("attempts", "alice", {"v": 1}, ttl=60)
    backend.storage.incr("attempts", "alice", ttl=60)
    backend.storage.put("attempts", "bob", {"v": 2}, ttl=60)
    backend.storage.incr("attempts", "bob", ttl=60)
    backend.storage.delete("attempts", "alice")
    assert backend.storage.get("attempts", "alice") is None
    assert backend.storage.get("attempts", "bob") == {"v": 2}
    assert backend.storage.incr("attempts", "bob", ttl=60) == 2


def test_concurrent_incr_counts_every_call(backend: Backend) -> None:
    results = race(20, lambda: [backend.storage.incr("attempts", "k", ttl=60) for _ in range(10)])
    counts = sorted(n for batch in results for n in batch)
    assert counts == list(range(1, 201))
