"""SQLite specifics: URL forms, the file on disk (WAL, persistence, schema version) and the purge."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from kubeoidc_provider.storage import Consumed, open_storage
from kubeoidc_provider.storage.sqlite import SQLiteStorage
from support.storage import FakeClock


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    db.close()
    return int(count)


async def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    storage = open_storage("sqlite:///state/kubeoidc.db")
    assert isinstance(storage, SQLiteStorage)
    await storage.put("code", "k", {"v": 1}, ttl=60)
    await storage.close()
    assert (tmp_path / "state" / "kubeoidc.db").is_file()


async def test_absolute_url_has_four_slashes(tmp_path: Path) -> None:
    path = tmp_path / "kubeoidc.db"
    storage = open_storage(f"sqlite:///{path}")
    assert isinstance(storage, SQLiteStorage)
    assert storage.path == str(path)
    await storage.close()
    assert path.is_file()


async def test_memory_url_keeps_state_for_the_life_of_the_object_across_threads() -> None:
    storage = open_storage("sqlite:///:memory:")
    await storage.put("code", "k", {"v": 1}, ttl=60)
    found: list[Consumed | None] = []
    # From another thread and its own event loop: the storage is bound to neither.
    thread = threading.Thread(target=lambda: found.append(asyncio.run(storage.consume("code", "k"))))
    thread.start()
    thread.join()
    assert found == [Consumed({"v": 1}, first=True)]
    await storage.close()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite://host/path.db", "sqlite:///x.db?mode=ro"]
)
def test_a_malformed_sqlite_url_is_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match="SQLite storage URL"):
        open_storage(url)


def test_a_missing_folder_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/missing/kubeoidc.db")


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    await SQLiteStorage(tmp_path / "state.db").close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


async def test_entries_survive_a_restart(tmp_path: Path) -> None:
    first = SQLiteStorage(tmp_path / "state.db")
    await first.put("refresh", "k", {"grant": "g1"}, ttl=600)
    await first.consume("refresh", "k")
    await first.incr("attempts", "alice", ttl=600)
    await first.close()

    second = SQLiteStorage(tmp_path / "state.db")
    assert await second.consume("refresh", "k") == Consumed({"grant": "g1"}, first=False)
    assert await second.incr("attempts", "alice", ttl=600) == 2
    await second.close()


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(ValueError, match="schema version 99"):
        SQLiteStorage(tmp_path / "state.db")


async def test_expired_rows_are_purged_once_the_purge_interval_has_passed(tmp_path: Path) -> None:
    clock = FakeClock()
    storage = SQLiteStorage(tmp_path / "state.db", clock=clock, purge_interval=60)
    for i in range(10):
        await storage.put("code", f"k{i}", {"v": i}, ttl=5)
        await storage.incr("attempts", f"k{i}", ttl=5)
    clock.now += 30
    await storage.put("code", "fresh", {"v": "fresh"}, ttl=600)
    assert rows(tmp_path / "state.db", "kubeoidc_entries") == 11  # expired, but not yet purged

    clock.now += 31
    await storage.put("code", "fresher", {"v": "fresher"}, ttl=600)
    assert rows(tmp_path / "state.db", "kubeoidc_entries") == 2
    assert rows(tmp_path / "state.db", "kubeoidc_counters") == 0
    assert await storage.get("code", "fresh") == {"v": "fresh"}
    await storage.close()
