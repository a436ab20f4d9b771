"""The storage contract: one suite, run against memory, SQLite (both consume paths) and Redis."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from kubeoidc_provider.storage import Consumed, Storage
from support.storage import Backend

T = TypeVar("T")


async def race(count: int, action: Callable[[], Awaitable[T]]) -> list[T]:
    """Start ``count`` calls of ``action`` together on the event loop; return every result."""
    return list(await asyncio.gather(*(action() for _ in range(count))))


def test_backend_satisfies_the_storage_protocol(backend: Backend) -> None:
    assert isinstance(backend.storage, Storage)


async def test_put_then_get_returns_the_value(backend: Backend) -> None:
    await backend.storage.put("session", "k1", {"sub": "u1", "auth_time": 1700000000}, ttl=60)
    assert await backend.storage.get("session", "k1") == {"sub": "u1", "auth_time": 1700000000}


async def test_get_of_an_absent_key_is_none(backend: Backend) -> None:
    assert await backend.storage.get("session", "nope") is None


async def test_values_round_trip_as_json(backend: Backend) -> None:
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
    await backend.storage.put("code", "k", value, ttl=60)
    expected = dict(value, tuple=["a", "b"])
    assert await backend.storage.get("code", "k") == expected
    found = await backend.storage.consume("code", "k")
    assert found == Consumed(expected, first=True)


@pytest.mark.parametrize(
    "value",
    [{"a": {1, 2}}, {"a": b"bytes"}, {"a": math.nan}, {"a": object()}, ["not", "a", "mapping"]],
    ids=["set", "bytes", "nan", "object", "list"],
)
async def test_a_value_json_cannot_carry_is_refused_on_put(backend: Backend, value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        await backend.storage.put("code", "k", value, ttl=60)
    assert await backend.storage.get("code", "k") is None


async def test_get_returns_a_copy_that_the_caller_may_change(backend: Backend) -> None:
    original = {"scopes": ["openid"]}
    await backend.storage.put("consent", "k", original, ttl=60)
    original["scopes"].append("changed after put")
    first = await backend.storage.get("consent", "k")
    assert first == {"scopes": ["openid"]}
    first["scopes"].append("changed after get")
    assert await backend.storage.get("consent", "k") == {"scopes": ["openid"]}


async def test_kinds_are_separate_namespaces(backend: Backend) -> None:
    await backend.storage.put("code", "same", {"kind": "code"}, ttl=60)
    await backend.storage.put("refresh", "same", {"kind": "refresh"}, ttl=60)
    assert await backend.storage.get("code", "same") == {"kind": "code"}
    assert await backend.storage.get("refresh", "same") == {"kind": "refresh"}
    await backend.storage.delete("code", "same")
    assert await backend.storage.get("refresh", "same") == {"kind": "refresh"}


async def test_keys_may_hold_any_characters(backend: Backend) -> None:
    for key in ("a:b", "a*b?[c]", "ключ", "", " spaced "):
        await backend.storage.put("session", key, {"key": key}, ttl=60)
    for key in ("a:b", "a*b?[c]", "ключ", "", " spaced "):
        assert await backend.storage.get("session", key) == {"key": key}


@pytest.mark.parametrize("kind", ["", "a:b"])
async def test_a_kind_that_could_collide_is_refused(backend: Backend, kind: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        await backend.storage.put(kind, "k", {}, ttl=60)
    with pytest.raises(ValueError, match="kind"):
        await backend.storage.get(kind, "k")


async def test_put_replaces_the_value(backend: Backend) -> None:
    await backend.storage.put("session", "k", {"v": 1}, ttl=60)
    await backend.storage.put("session", "k", {"v": 2}, ttl=60)
    assert await backend.storage.get("session", "k") == {"v": 2}


async def test_delete_removes_the_entry_and_deleting_an_absent_one_is_fine(backend: Backend) -> None:
    await backend.storage.put("session", "k", {"v": 1}, ttl=60)
    await backend.storage.delete("session", "k")
    assert await backend.storage.get("session", "k") is None
    assert await backend.storage.consume("session", "k") is None
    await backend.storage.delete("session", "k")
    await backend.storage.delete("session", "never-there")


@pytest.mark.parametrize("ttl", [0, -1, 1.5, True, "60"])
async def test_a_ttl_that_is_not_a_positive_whole_number_is_refused(backend: Backend, ttl: Any) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await backend.storage.put("session", "k", {}, ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await backend.storage.incr("attempts", "k", ttl=ttl)
    assert await backend.storage.get("session", "k") is None


async def test_an_entry_lives_until_its_ttl_ends(backend: Backend) -> None:
    await backend.storage.put("session", "k", {"v": 1}, ttl=1)
    assert await backend.storage.get("session", "k") == {"v": 1}
    backend.elapse(0.5)
    assert await backend.storage.get("session", "k") == {"v": 1}
    backend.elapse(0.6)
    assert await backend.storage.get("session", "k") is None
    assert await backend.storage.consume("session", "k") is None


async def test_put_again_gives_a_fresh_ttl(backend: Backend) -> None:
    await backend.storage.put("session", "k", {"v": 1}, ttl=1)
    backend.elapse(0.6)
    await backend.storage.put("session", "k", {"v": 2}, ttl=1)
    backend.elapse(0.6)
    assert await backend.storage.get("session", "k") == {"v": 2}


async def test_consume_returns_first_then_replays_until_the_ttl_ends(backend: Backend) -> None:
    await backend.storage.put("code", "k", {"client_id": "app"}, ttl=1)
    assert await backend.storage.consume("code", "k") == Consumed({"client_id": "app"}, first=True)
    assert await backend.storage.consume("code", "k") == Consumed({"client_id": "app"}, first=False)
    assert await backend.storage.consume("code", "k") == Consumed({"client_id": "app"}, first=False)
    backend.elapse(1.1)
    assert await backend.storage.consume("code", "k") is None


async def test_consume_of_an_absent_key_is_none(backend: Backend) -> None:
    assert await backend.storage.consume("code", "nope") is None


async def test_a_consumed_entry_can_still_be_read(backend: Backend) -> None:
    await backend.storage.put("refresh", "k", {"grant": "g1"}, ttl=60)
    await backend.storage.consume("refresh", "k")
    assert await backend.storage.get("refresh", "k") == {"grant": "g1"}


async def test_put_over_a_consumed_entry_makes_it_unused_again(backend: Backend) -> None:
    await backend.storage.put("code", "k", {"v": 1}, ttl=60)
    await backend.storage.consume("code", "k")
    await backend.storage.put("code", "k", {"v": 2}, ttl=60)
    assert await backend.storage.consume("code", "k") == Consumed({"v": 2}, first=True)


async def test_consume_does_not_extend_the_ttl(backend: Backend) -> None:
    await backend.storage.put("code", "k", {"v": 1}, ttl=1)
    backend.elapse(0.6)
    assert await backend.storage.consume("code", "k") == Consumed({"v": 1}, first=True)
    backend.elapse(0.5)
    assert await backend.storage.consume("code", "k") is None


async def test_concurrent_consumers_see_exactly_one_first_use(backend: Backend) -> None:
    await backend.storage.put("code", "k", {"v": 1}, ttl=60)
    results = await race(20, lambda: backend.storage.consume("code", "k"))
    assert all(r is not None and r.value == {"v": 1} for r in results)
    assert sum(1 for r in results if r is not None and r.first) == 1


async def test_incr_counts_from_one(backend: Backend) -> None:
    assert [await backend.storage.incr("attempts", "alice", ttl=60) for _ in range(3)] == [1, 2, 3]


async def test_incr_counts_each_key_and_kind_apart(backend: Backend) -> None:
    await backend.storage.incr("attempts", "alice", ttl=60)
    await backend.storage.incr("attempts", "alice", ttl=60)
    assert await backend.storage.incr("attempts", "bob", ttl=60) == 1
    assert await backend.storage.incr("ip-attempts", "alice", ttl=60) == 1


async def test_incr_window_starts_at_the_first_incr_and_is_not_extended(backend: Backend) -> None:
    assert await backend.storage.incr("attempts", "alice", ttl=1) == 1
    backend.elapse(0.6)
    assert await backend.storage.incr("attempts", "alice", ttl=1) == 2
    backend.elapse(0.5)
    assert await backend.storage.incr("attempts", "alice", ttl=1) == 1
    assert await backend.storage.incr("attempts", "alice", ttl=1) == 2


async def test_counters_and_entries_with_the_same_key_do_not_meet(backend: Backend) -> None:
    await backend.storage.put("attempts", "alice", {"v": 1}, ttl=60)
    assert await backend.storage.incr("attempts", "alice", ttl=60) == 1
    assert await backend.storage.get("attempts", "alice") == {"v": 1}
    assert await backend.storage.consume("attempts", "alice") == Consumed({"v": 1}, first=True)


async def test_delete_resets_a_counter(backend: Backend) -> None:
    await backend.storage.incr("attempts", "alice", ttl=60)
    await backend.storage.incr("attempts", "alice", ttl=60)
    await backend.storage.delete("attempts", "alice")
    assert await backend.storage.incr("attempts", "alice", ttl=60) == 1


async def test_delete_removes_the_entry_and_the_counter_of_one_kind_and_key_only(backend: Backend) -> None:
    await backend.storage.put("attempts", "alice", {"v": 1}, ttl=60)
    await backend.storage.incr("attempts", "alice", ttl=60)
    await backend.storage.put("attempts", "bob", {"v": 2}, ttl=60)
    await backend.storage.incr("attempts", "bob", ttl=60)
    await backend.storage.delete("attempts", "alice")
    assert await backend.storage.get("attempts", "alice") is None
    assert await backend.storage.get("attempts", "bob") == {"v": 2}
    assert await backend.storage.incr("attempts", "bob", ttl=60) == 2


async def test_uncount_takes_one_back_and_keeps_the_window(backend: Backend) -> None:
    for _ in range(3):
        await backend.storage.incr("attempts", "alice", ttl=1)
    await backend.storage.uncount("attempts", "alice")
    assert await backend.storage.incr("attempts", "alice", ttl=1) == 3
    backend.elapse(1.1)
    assert await backend.storage.incr("attempts", "alice", ttl=1) == 1


async def test_uncount_never_starts_a_counter_nor_goes_below_zero(backend: Backend) -> None:
    await backend.storage.uncount("attempts", "nobody")
    assert await backend.storage.incr("attempts", "nobody", ttl=60) == 1
    await backend.storage.uncount("attempts", "nobody")
    await backend.storage.uncount("attempts", "nobody")
    assert await backend.storage.incr("attempts", "nobody", ttl=60) == 1


async def test_uncount_of_an_expired_counter_leaves_it_expired(backend: Backend) -> None:
    await backend.storage.incr("attempts", "alice", ttl=1)
    backend.elapse(1.1)
    await backend.storage.uncount("attempts", "alice")
    assert await backend.storage.incr("attempts", "alice", ttl=60) == 1


async def test_concurrent_incr_and_uncount_lose_no_step(backend: Backend) -> None:
    for _ in range(50):
        await backend.storage.incr("attempts", "k", ttl=60)

    async def back_and_forth() -> None:
        await backend.storage.uncount("attempts", "k")
        await backend.storage.incr("attempts", "k", ttl=60)
        await backend.storage.uncount("attempts", "k")

    await race(20, back_and_forth)
    assert await backend.storage.incr("attempts", "k", ttl=60) == 31


async def test_concurrent_incr_counts_every_call(backend: Backend) -> None:
    async def ten() -> list[int]:
        return [await backend.storage.incr("attempts", "k", ttl=60) for _ in range(10)]

    results = await race(20, ten)
    counts = sorted(n for batch in results for n in batch)
    assert counts == list(range(1, 201))
