"""How long the registry's watch waits before it tries the API server again: bounded, jittered.

One policy for listing and watching. The first retry comes quickly (a dropped connection is usually
back at once); each failure in a row doubles the wait up to ``cap``, which stays small (a second or
two): while the API server is down a failed attempt costs one refused connection, and once it is back
every stream is in step again within ``cap``. Jitter (each wait drawn between half and all of its
bound) keeps many streams and many providers from calling the returning API server in lockstep.
"""

from __future__ import annotations

import random
from collections.abc import Callable

#: The first wait after a failure, in seconds.
INITIAL = 0.2
#: The longest wait between two attempts, in seconds: the registry is at most this stale (plus one
#: request) after the API server returns.
CAP = 1.5


class Backoff:
    """The waits between attempts: ``next_delay()`` after each failure, ``reset()`` after a success."""

    def __init__(
        self,
        initial: float = INITIAL,
        cap: float = CAP,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if not 0 < initial <= cap:
            raise ValueError(f"a backoff needs 0 < initial ({initial}) <= cap ({cap})")
        self.initial = initial
        self.cap = cap
        self._uniform = uniform
        self._bound = initial
        #: Failures since the last success.
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next attempt, after one more failure."""
        bound = self._bound
        self._bound = min(self._bound * 2, self.cap)
        self.failures += 1
        return self._uniform(bound / 2, bound)

    def reset(self) -> None:
        self._bound = self.initial
        self.failures = 0
