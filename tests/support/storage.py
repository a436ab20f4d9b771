"""What the storage tests share: a clock that moves only when told to, and a backend under test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubeoidc_provider.storage import Storage


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    """A storage under test, and how to let time pass for it (a fake clock, or a real sleep)."""

    name: str
    storage: Storage
    elapse: Callable[[float], None]
