"""SQLite storage: the embedded default, one file, safe for several threads and processes.

URL forms (as SQLAlchemy spells them): ``sqlite:///relative/path.db`` (relative to the working
directory), ``sqlite:////absolute/path.db`` (note the fourth slash), ``sqlite:///:memory:`` (private
to this storage object, gone on close). The file's folder must exist; the file and its tables are
created on first use.

How the guarantees are kept:

- The database runs in WAL mode with ``synchronous=NORMAL`` (a commit does not wait for the disk;
  a power cut may lose the last commits, never corrupt the file) and a busy timeout, so writers
  from other processes wait for each other instead of failing.
- One connection per storage object, used by one thread of its own (:mod:`.own_thread`): every
  coroutine hands its statement to that thread, so the event loop never waits on the disk or on
  another process's write lock, and SQLite serialises writers anyway (each call is one short
  statement). The thread wakes each waiting event loop once per batch of finished statements, not once
  per statement. A storage belongs to the process that opened it: in a child forked after the opening,
  it refuses every call.
- ``consume`` is one ``UPDATE ... SET uses = uses + 1 ... RETURNING`` statement (SQLite 3.35+), or,
  on an older SQLite, the same ``UPDATE`` and a ``SELECT`` inside ``BEGIN IMMEDIATE`` (which takes
  the write lock first). Either way no other writer, in this process or another, can come between
  the increment and the read of the count: exactly one caller sees ``uses == 1``.
- ``incr`` is one ``INSERT ... ON CONFLICT DO UPDATE`` that restarts an expired window in place.
- ``uncount`` is one ``UPDATE`` that only touches a live, positive counter.
- Expired rows are deleted every ``purge_interval`` seconds by whichever writer comes first.
- Checkpoints (copying the WAL back into the database file: the only step that waits for the disk with
  ``synchronous=NORMAL``) run every ``checkpoint_interval`` seconds on a thread and connection of their
  own, in PASSIVE mode (never waiting for readers or writers), instead of in whichever commit crosses
  SQLite's automatic threshold: a request's write never waits for an ``fsync``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import Consumed, check_kind, check_ttl, dump_value, load_value
from .own_thread import OwnThread

__all__ = ["SQLiteStorage"]

logger = logging.getLogger(__name__)

#: ``RETURNING`` arrived in SQLite 3.35.0 (2021); older libraries take the ``BEGIN IMMEDIATE`` path.
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kubeoidc_entries (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kubeoidc_entries_expires_at ON kubeoidc_entries (expires_at);
CREATE TABLE IF NOT EXISTS kubeoidc_counters (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kubeoidc_counters_expires_at ON kubeoidc_counters (expires_at);
"""

_PUT = """
INSERT INTO kubeoidc_entries (kind, key, value, expires_at, uses) VALUES (?, ?, ?, ?, 0)
ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, uses = 0
"""
_CONSUME = "UPDATE kubeoidc_entries SET uses = uses + 1 WHERE kind = ? AND key = ? AND expires_at > ?"
# In an UPDATE's SET clause every column names the row's old value, so both CASEs test the old expiry.
_INCR = """
INSERT INTO kubeoidc_counters (kind, key, count, expires_at) VALUES (?, ?, 1, ?)
ON CONFLICT (kind, key) DO UPDATE SET
    count = CASE WHEN expires_at <= ? THEN 1 ELSE count + 1 END,
    expires_at = CASE WHEN expires_at <= ? THEN excluded.expires_at ELSE expires_at END
"""
_UNCOUNT = """
UPDATE kubeoidc_counters SET count = count - 1
WHERE kind = ? AND key = ? AND expires_at > ? AND count > 0
"""


class SQLiteStorage:
    """:class:`~kubeoidc_provider.storage.Storage` in one SQLite file.

    ``clock`` is injectable for tests; ``use_returning`` forces one of the two ``consume``/``incr``
    code paths (default: ``RETURNING`` when the SQLite library has it).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        purge_interval: float = 60.0,
        busy_timeout: float = 10.0,
        use_returning: bool | None = None,
        checkpoint_interval: float = 1.0,
    ) -> None:
        path = str(path)
        if path != ":memory:" and not Path(path).parent.is_dir():
            raise ValueError(f"SQLite storage: the folder of {path!r} does not exist")
        self.path = path
        self._clock = clock
        self._purge_interval = purge_interval
        self._returning = HAS_RETURNING if use_returning is None else use_returning
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, each statement its own transaction unless we BEGIN.
        self._db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            self._setup(busy_timeout)
        except BaseException:
            self._db.close()
            raise
        self._next_purge = clock() + purge_interval
        self._thread = OwnThread("kubeoidc-sqlite", owner="the SQLite storage")
        self._stop_checkpoints = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if path != ":memory:":
            # Like the statements' thread, this one holds nothing of the storage: one dropped without
            # close is collected (its connection closed), and then this thread ends too.
            self._checkpointer = threading.Thread(
                target=_checkpoint_forever,
                args=(path, busy_timeout, checkpoint_interval, self._stop_checkpoints),
                name="kubeoidc-sqlite-checkpoint",
                daemon=True,
            )
            self._checkpointer.start()
            weakref.finalize(self, self._stop_checkpoints.set)

    # Each method hands its statement to the storage's own thread (see .own_thread for what that costs
    # and guarantees) and awaits the future it gets back: no other coroutine frame in between.

    async def put(self, kind: str, key: str, value: Mapping[str, Any], ttl: int) -> None:
        await self._thread.submit(self._put, kind, key, value, ttl)

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return await self._thread.submit(self._get, kind, key)

    async def delete(self, kind: str, key: str) -> None:
        await self._thread.submit(self._delete, kind, key)

    async def consume(self, kind: str, key: str) -> Consumed | None:
        return await self._thread.submit(self._consume, kind, key)

    async def incr(self, kind: str, key: str, ttl: int) -> int:
        return await self._thread.submit(self._incr, kind, key, ttl)

    async def uncount(self, kind: str, key: str) -> None:
        await self._thread.submit(self._uncount, kind, key)

    async def close(self) -> None:
        """Finish the statements already handed over, close the file and end both threads; any later
        call is refused (``RuntimeError``). Closing again does nothing."""
        self._stop_checkpoints.set()
        await self._thread.close(self._close)
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.join)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SQLiteStorage:
        """Open ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite:///:memory:``."""
        scheme, sep, rest = url.partition("://")
        if scheme.lower() != "sqlite" or not sep or not rest.startswith("/") or len(rest) < 2:
            raise ValueError(
                "SQLite storage URL must be sqlite:///relative/path.db, sqlite:////absolute/path.db "
                "or sqlite:///:memory:"
            )
        path, _, query = rest[1:].partition("?")
        if query:
            raise ValueError("SQLite storage URL takes no query options")
        return cls(path, **kwargs)

    def _setup(self, busy_timeout: float) -> None:
        db = self._db
        if self.path != ":memory:":
            mode = self._wal_mode(busy_timeout)
            if str(mode).lower() != "wal":
                logger.warning("SQLite storage: WAL mode refused (journal mode is %s)", mode)
            # Checkpoints run on their own thread (_checkpoint_forever), never inside a request's commit.
            db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute("PRAGMA synchronous = NORMAL")
        with self._transaction():
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > _SCHEMA_VERSION:
                raise ValueError(
                    f"SQLite storage {self.path!r} has schema version {version}, newer than this "
                    f"provider's {_SCHEMA_VERSION}: run a newer provider or use a new file"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _wal_mode(self, busy_timeout: float) -> Any:
        """Switch the file to WAL mode. Processes opening a new file together (``--workers``) each ask;
        the switch fails at once while another holds the file (it does not wait on the busy timeout),
        so it is asked again until the busy timeout."""
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                return self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database's write lock from its first statement."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _put(self, kind: str, key: str, value: Mapping[str, Any], ttl: int) -> None:
        check_kind(kind)
        text = dump_value(value)
        check_ttl(ttl)
        with self._lock:
            now = self._clock()
            self._db.execute(_PUT, (kind, key, text, now + ttl))
            self._maybe_purge(now)

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        check_kind(kind)
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM kubeoidc_entries WHERE kind = ? AND key = ? AND expires_at > ?",
                (kind, key, self._clock()),
            ).fetchone()
        return load_value(row[0]) if row is not None else None

    def _delete(self, kind: str, key: str) -> None:
        check_kind(kind)
        with self._lock, self._transaction() as db:
            db.execute("DELETE FROM kubeoidc_entries WHERE kind = ? AND key = ?", (kind, key))
            db.execute("DELETE FROM kubeoidc_counters WHERE kind = ? AND key = ?", (kind, key))

    def _consume(self, kind: str, key: str) -> Consumed | None:
        check_kind(kind)
        with self._lock:
            args = (kind, key, self._clock())
            if self._returning:
                # fetchall() steps the statement to its end, so it has committed when we return.
                rows = self._db.execute(_CONSUME + " RETURNING value, uses", args).fetchall()
            else:
                with self._transaction() as db:
                    changed = db.execute(_CONSUME, args).rowcount
                    rows = (
                        db.execute(
                            "SELECT value, uses FROM kubeoidc_entries WHERE kind = ? AND key = ?",
                            (kind, key),
                        ).fetchall()
                        if changed
                        else []
                    )
        if not rows:
            return None
        text, uses = rows[0]
        return Consumed(load_value(text), first=uses == 1)

    def _incr(self, kind: str, key: str, ttl: int) -> int:
        check_kind(kind)
        check_ttl(ttl)
        with self._lock:
            now = self._clock()
            args = (kind, key, now + ttl, now, now)
            if self._returning:
                rows = self._db.execute(_INCR + " RETURNING count", args).fetchall()
            else:
                with self._transaction() as db:
                    db.execute(_INCR, args)
                    rows = db.execute(
                        "SELECT count FROM kubeoidc_counters WHERE kind = ? AND key = ?", (kind, key)
                    ).fetchall()
            self._maybe_purge(now)
        count: int = rows[0][0]
        return count

    def _uncount(self, kind: str, key: str) -> None:
        check_kind(kind)
        with self._lock:
            self._db.execute(_UNCOUNT, (kind, key, self._clock()))

    def _close(self) -> None:
        with self._lock:
            self._db.close()

    def _maybe_purge(self, now: float) -> None:
        """Delete expired rows, at most once per purge interval (lock held)."""
        if now < self._next_purge:
            return
        self._next_purge = now + self._purge_interval
        with self._transaction() as db:
            entries = db.execute("DELETE FROM kubeoidc_entries WHERE expires_at <= ?", (now,)).rowcount
            counters = db.execute("DELETE FROM kubeoidc_counters WHERE expires_at <= ?", (now,)).rowcount
        if entries or counters:
            logger.debug("SQLite storage: purged %s expired entries and %s counters", entries, counters)


def _checkpoint_forever(path: str, busy_timeout: float, interval: float, stop: threading.Event) -> None:
    """Copy the WAL into the database every ``interval`` seconds, until ``stop`` is set."""
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        while not stop.wait(interval):
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:  # busy or locked: the next round copies what is left
                logger.debug("SQLite storage: checkpoint postponed: %s", error)
    finally:
        db.close()
