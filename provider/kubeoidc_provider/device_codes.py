"""Device authorization requests (RFC 8628) in the state store: codes, the user's decision, polling.

A request has two codes: the ``device_code`` the device polls with (256 bits, stored by its hash) and
the ``user_code`` a person types on another device. User codes are eight letters from an alphabet of
twenty consonants (RFC 8628 §6.1: no vowels, so no words; case-insensitive; no 0/O or 1/I confusion),
shown as ``BCDF-GHJK``: about 2^34.6 values, of which a handful are live at once; guessing is further
throttled per address on the verification page. Every entry lives in the asynchronous storage, so
several replicas share them.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, replace

from kubeoidc_provider.state import new_token, token_hash
from kubeoidc_provider.storage import Storage

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
#: RFC 8628 §3.5: on ``slow_down`` the interval grows by 5 seconds, for this and every later request.
SLOW_DOWN_STEP = 5
#: How long an expired request is remembered, so its polls get ``expired_token`` and not "unknown".
EXPIRED_MEMORY = 600

PENDING, APPROVED, DENIED = "pending", "approved", "denied"


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """What a device asked for, and what the user decided."""

    client_id: str
    scope: str
    expires_at: int
    status: str = PENDING
    user_id: str | None = None
    auth_time: int | None = None
    grant_id: str | None = None
    #: The uid of the OIDCClient that asked: only that OIDCClient may redeem the device code.
    client_uid: str = ""

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


def new_user_code() -> str:
    letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    half = USER_CODE_LENGTH // 2
    return f"{letters[:half]}-{letters[half:]}"


def normalize_user_code(typed: str) -> str | None:
    """The code as stored, from what a person typed (any case, dashes and spaces ignored); None if it
    cannot be a user code at all."""
    letters = "".join(ch for ch in typed.upper() if ch not in "- ")
    if len(letters) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in letters):
        return None
    return letters


class DeviceCodes:
    """Typed access to the device requests in the storage."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def start(
        self, client_id: str, scope: str, ttl: int, interval: int, *, client_uid: str = ""
    ) -> tuple[str, str]:
        """A new request: its ``(device_code, user_code)``."""
        device_code = new_token()
        device_key = token_hash(device_code)
        while True:
            user_code = new_user_code()
            user_key = token_hash(normalize_user_code(user_code) or "")
            if await self.storage.get("device_user_code", user_key) is None:
                break
        request = DeviceRequest(client_id, scope, int(time.time()) + ttl, client_uid=client_uid)
        remembered = ttl + EXPIRED_MEMORY
        await self.storage.put("device", device_key, asdict(request), remembered)
        await self.storage.put("device_user_code", user_key, {"device": device_key}, ttl)
        await self.storage.put("device_poll", device_key, {"at": 0, "interval": interval}, remembered)
        return device_code, user_code

    async def by_user_code(self, typed: str) -> tuple[str, DeviceRequest] | None:
        """The pending, unexpired request a typed user code stands for, with its key."""
        normalized = normalize_user_code(typed)
        if normalized is None:
            return None
        entry = await self.storage.get("device_user_code", token_hash(normalized))
        if entry is None:
            return None
        found = await self.get(str(entry["device"]))
        if found is None or found.status != PENDING or found.expired:
            return None
        return str(entry["device"]), found

    async def get(self, device_key: str) -> DeviceRequest | None:
        value = await self.storage.get("device", device_key)
        return DeviceRequest(**value) if value is not None else None

    async def find(self, device_code: str) -> tuple[str, DeviceRequest] | None:
        """The request a device polls for, with its key."""
        key = token_hash(device_code)
        found = await self.get(key)
        return (key, found) if found is not None else None

    async def decide(self, device_key: str, *, user_id: str, auth_time: int, approved: bool) -> bool:
        """Record the user's decision on a pending request; False if it is no longer pending."""
        current = await self.get(device_key)
        if current is None or current.status != PENDING or current.expired:
            return False
        decided = replace(
            current,
            status=APPROVED if approved else DENIED,
            user_id=user_id,
            auth_time=auth_time,
            grant_id=new_token(12),
        )
        ttl = max(current.expires_at - int(time.time()), 1) + EXPIRED_MEMORY
        await self.storage.put("device", device_key, asdict(decided), ttl)
        return True

    async def too_fast(self, device_key: str, request: DeviceRequest) -> bool:
        """Record a poll; True when it came sooner than the interval allows (which then grows)."""
        now = time.time()
        ttl = max(request.expires_at - int(now), 1) + EXPIRED_MEMORY
        last = await self.storage.get("device_poll", device_key) or {"at": 0, "interval": SLOW_DOWN_STEP}
        interval = int(last["interval"])
        fast = now - float(last["at"]) < interval
        if fast:
            interval += SLOW_DOWN_STEP
        await self.storage.put("device_poll", device_key, {"at": now, "interval": interval}, ttl)
        return fast

    async def spend(self, device_key: str) -> bool:
        """Take the approved request's tokens: True only the first time (atomic across replicas)."""
        consumed = await self.storage.consume("device", device_key)
        return consumed is not None and consumed.first
