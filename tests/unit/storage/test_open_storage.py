"""``open_storage`` picks the implementation by the URL's scheme, and says clearly what it cannot open."""

from __future__ import annotations

import pytest

from kubeoidc_provider.storage import open_storage
from kubeoidc_provider.storage.memory import MemoryStorage
from kubeoidc_provider.storage.redis import RedisStorage
from kubeoidc_provider.storage.sqlite import SQLiteStorage


@pytest.mark.parametrize(
    ("url", "cls"),
    [
        ("memory://", MemoryStorage),
        ("MEMORY://", MemoryStorage),
        ("sqlite:///:memory:", SQLiteStorage),
        ("redis://127.0.0.1:1/0", RedisStorage),
        ("rediss://127.0.0.1:1/0", RedisStorage),
        ("redis+sentinel://127.0.0.1:1/mymaster", RedisStorage),
        ("rediss+sentinel://127.0.0.1:1/mymaster", RedisStorage),
    ],
)
async def test_the_scheme_picks_the_implementation_without_connecting(url: str, cls: type) -> None:
    storage = open_storage(url)
    assert isinstance(storage, cls)
    await storage.close()


@pytest.mark.parametrize("url", ["postgres://db/kubeoidc", "file:///tmp/x.db", "mysql://u:p@db/x"])
def test_an_unknown_scheme_is_refused_with_the_supported_ones(url: str) -> None:
    with pytest.raises(
        ValueError, match=r"unknown storage URL scheme .* use memory://, sqlite:///path.db, redis://"
    ):
        open_storage(url)


def test_a_url_without_a_scheme_is_refused_without_showing_credentials() -> None:
    with pytest.raises(ValueError, match="scheme://") as error:
        open_storage("user:hunter2@localhost")
    assert "hunter2" not in str(error.value)


def test_an_unknown_scheme_error_does_not_show_credentials() -> None:
    with pytest.raises(ValueError, match="unknown storage URL scheme") as error:
        open_storage("postgres://app:hunter2@db/kubeoidc")
    assert "hunter2" not in str(error.value)
