"""The state's check-then-act steps are atomic in every backend: racing callers on one event loop (and,
for SQLite and Redis, the same operations a second replica would send) get exactly one winner."""

from __future__ import annotations

import asyncio

from kubeoidc_provider.state import Interaction, State
from support.storage import Backend

RACERS = 12
LIMIT = 3


async def test_racing_resumes_finish_a_pending_request_exactly_once(backend: Backend) -> None:
    state = State(backend.storage)
    interaction_id = await state.save_interaction(Interaction({"client_id": "web"}, "session-hash"))

    outcomes = await asyncio.gather(*(state.finish_interaction(interaction_id) for _ in range(RACERS)))

    assert outcomes.count(True) == 1
    assert await state.get_interaction(interaction_id) is None
    assert await state.finish_interaction(interaction_id) is False


async def test_racing_failed_logins_let_only_the_limit_through_and_count_every_one(backend: Backend) -> None:
    state = State(backend.storage)

    allowed = await asyncio.gather(
        *(state.reserve_login_attempt("user:alice", 60, LIMIT) for _ in range(RACERS))
    )

    assert allowed.count(True) == LIMIT
    # Every racer was counted: the next one is number RACERS + 1.
    assert await backend.storage.incr("failed_logins", "user:alice", 60) == RACERS + 1


async def test_a_released_attempt_gives_its_place_back(backend: Backend) -> None:
    state = State(backend.storage)
    for _ in range(LIMIT):
        assert await state.reserve_login_attempt("address:192.0.2.7", 60, LIMIT)

    await state.release_login_attempt("address:192.0.2.7")

    assert await state.reserve_login_attempt("address:192.0.2.7", 60, LIMIT)
    assert not await state.reserve_login_attempt("address:192.0.2.7", 60, LIMIT)
