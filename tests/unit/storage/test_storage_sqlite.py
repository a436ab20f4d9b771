"""SQLite specifics: URL forms, the file on disk (WAL, persistence, schema version) and the purge."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from kubeoidc_provider.storage import Consumed, open_storage
from kubeoidc_provider.storage.sqlite import SQLiteStorage


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    db.close()
    return int(count)


def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    storage = open_storage("sqlite:///state/kubeoidc.db")
    assert isinstance(storage, SQLiteStorage)
    storage.put("code", "k", {"v": 1}, ttl=60)
    storage.close()
    assert (tmp_path / "state" / "kubeoidc.db").is_file()


def test_absolute_url_has_four_slashes(tmp_path: Path) -> None:
    path = tmp_path / "kubeoidc.db"
    storage = open_storage(f"sqlite:///{path}")
    assert isinstance(storage, SQLiteStorage)
    assert storage.path == str(path)
    storage.close()
    assert path.is_file()


def test_memory_url_keeps_state_for_the_life_of_the_object_across_threads() -> None:
    storage = open_storage("sqlite:///:memory:")
    storage.put("code", "k", {"v": 1}, ttl=60)
    found: list[Consumed | None] = []
    thread = threading.Thread(target=lambda: found.append(storage.consume("code", "k")))
    thread.start()
    thread.join()
    assert found == [Consumed({"v": 1}, first=True)]
    storage.close()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite://host/path.db", "sqlite:///x.db?mode=ro"]
)
def test_a_malformed_sqlite_url_is_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match="SQLite storage URL"):
        open_storage(url)


def test_a_missing_folder_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/missing/kubeoidc.db")


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    SQLiteStorage(tmp_path / "state.db").close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_entries_survive_a_restart(tmp_path: Path) -> None:
    first = SQLiteStorage(tmp_path / "state.db")
    first.put("refresh", "k", {"grant": "g1"}, ttl=600)
    first.consume("refresh", "k")
    first.incr("attempts", "alice", ttl=600)
    first.close()

    second = SQLiteStorage(tmp_path / "state.db")
    assert second.consume("refresh", "k") == Consumed({"grant": "g1"}, first=False)
    assert second.incr("attempts", "alice", ttl=600) == 2
    second.close()


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(ValueError, match="schema version 99"):
        SQLiteStorage(tmp_path / "state.db")


def test_expired_rows_are_purged_once_the_purge_interval_has_passed(tmp_path: Path) -> None:
    clock = FakeClock()
    storage = SQLiteStorage(tmp_path / "state.db", clock=clock, purge_interval=60)
    for i in range(10):
        storage.put("code", f"k{i}", {"v": i}, ttl=5)
        storage.incr("attempts", f"k{i}", ttl=5)
    clock.now += 30
    storage.put("code", "fresh", {"v": "fresh"}, ttl=600)
    assert rows(tmp_path / "state.db", "kubeoidc_entries") == 11  # expired, but not yet purged

    clock.now += 31
    storage.put("code", "fresher", {"v": "fresher"}, ttl=600)
    assert rows(tmp_path / "state.db", "kubeoidc_entries") == 2
    assert rows(tmp_path / "state.db", "kubeoidc_counters") == 0
    assert storage.get("code", "fresh") == {"v": "fresh"}
    storage.close()
