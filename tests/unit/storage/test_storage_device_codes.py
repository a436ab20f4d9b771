"""Device authorization requests (RFC 8628) over every storage backend: memory, SQLite and Redis.

Several provider replicas share them through Redis: a code approved on one replica is redeemed on
another, exactly once, however many polls race for it.
"""

from __future__ import annotations

import asyncio

from kubeoidc_provider.device_codes import APPROVED, DENIED, DeviceCodes
from support.storage import Backend


async def test_a_typed_user_code_finds_its_pending_request_in_any_case_and_spacing(backend: Backend) -> None:
    devices = DeviceCodes(backend.storage)
    _, user_code = await devices.start("cli", "openid groups", ttl=600, interval=5)
    found = await devices.by_user_code(user_code.lower().replace("-", " "))
    assert found is not None
    assert found[1].client_id == "cli"
    assert found[1].scope == "openid groups"
    assert await devices.by_user_code("BBBB-BBBB") is None
    assert await devices.by_user_code("not a code") is None


async def test_an_approved_request_is_spent_exactly_once_when_polls_race(backend: Backend) -> None:
    devices = DeviceCodes(backend.storage)
    device_code, user_code = await devices.start("cli", "openid", ttl=600, interval=5)
    found = await devices.by_user_code(user_code)
    assert found is not None
    key = found[0]
    assert await devices.decide(key, user_id="u1", auth_time=1700000000, approved=True)
    decided = await devices.find(device_code)
    assert decided is not None
    assert decided[1].status == APPROVED
    assert decided[1].user_id == "u1"
    # Decided once: the user code no longer leads anywhere, and a second decision is refused.
    assert await devices.by_user_code(user_code) is None
    assert not await devices.decide(key, user_id="u2", auth_time=1700000001, approved=False)
    spent = await asyncio.gather(*(devices.spend(key) for _ in range(8)))
    assert spent.count(True) == 1


async def test_a_denied_request_is_remembered_as_denied(backend: Backend) -> None:
    devices = DeviceCodes(backend.storage)
    device_code, user_code = await devices.start("cli", "openid", ttl=600, interval=5)
    found = await devices.by_user_code(user_code)
    assert found is not None
    assert await devices.decide(found[0], user_id="u1", auth_time=1700000000, approved=False)
    decided = await devices.find(device_code)
    assert decided is not None
    assert decided[1].status == DENIED


async def test_polling_faster_than_the_interval_slows_down_and_the_interval_grows(backend: Backend) -> None:
    devices = DeviceCodes(backend.storage)
    device_code, _ = await devices.start("cli", "openid", ttl=600, interval=1)
    found = await devices.find(device_code)
    assert found is not None
    key, request = found
    assert not await devices.too_fast(key, request)
    assert await devices.too_fast(key, request)  # at once: slow_down, the interval is now 6 s
    await asyncio.sleep(1.1)
    assert await devices.too_fast(key, request)  # 1 s is no longer enough
