"""The back-channel logout sweeper stops when the provider closes, even when the state store's client
swallows the cancellation (a client library may return from a command it was interrupted in): a
provider's shutdown never waits on a sweeper that sleeps on."""

from __future__ import annotations

import asyncio
from typing import Any

from kubeoidc_provider.backchannel import BackchannelLogout
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.signing import SigningKeys
from kubeoidc_provider.state import State
from kubeoidc_provider.storage.memory import MemoryStorage
from support.provider import ISSUER, signing_jwks


class SwallowingState(State):
    """A store whose client, cancelled in the middle of a sweep's read, returns as if nothing happened
    (and answers at once afterwards)."""

    def __init__(self) -> None:
        super().__init__(MemoryStorage())
        self.reading = asyncio.Event()

    async def claim_expiry_bucket(self, number: int, ttl: int) -> Any:
        if self.reading.is_set():
            return None
        self.reading.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return None
        return None


async def test_closing_stops_a_sweeper_whose_store_swallowed_the_cancellation() -> None:
    state = SwallowingState()
    backchannel = BackchannelLogout(
        issuer=ISSUER,
        signing=SigningKeys(ISSUER, KeySet.from_jwks(signing_jwks())),
        registry=ClientRegistry(),
        state=state,
    )
    backchannel.start()
    await asyncio.wait_for(state.reading.wait(), timeout=5)

    # Not wait_for: a close that swallowed its own cancellation would pass as finished.
    closing = asyncio.create_task(backchannel.close())
    done, _ = await asyncio.wait({closing}, timeout=5)

    if not done:  # clean up what the failure left running
        while not closing.done():
            closing.cancel()
            await asyncio.sleep(0.01)
    assert closing in done, "close waited for a sweeper that went on sleeping"
