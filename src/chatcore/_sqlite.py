"""One SQLite file shared by the embedded backends, used from worker threads.

Every call runs in a worker thread, one at a time per database (SQLite allows one
writer anyway), inside a transaction that commits on success and rolls back on
error. The one exception is :meth:`SqliteDatabase.read_now`: reads on the calling
thread through a second, read-only connection, for the log's consumers (a round trip
to the worker thread costs ~80 µs of CPU, more than reading a few rows of the tail).

WAL journal with ``synchronous=FULL``: a transaction that returned survives a crash
of the process and of the machine.

The files are private: a folder it creates is 0700, the database file 0600, and
SQLite creates its ``-wal`` and ``-shm`` files with the database file's mode.

A caller may mark one transaction *relaxed*: it then commits with
``synchronous=NORMAL`` (no fsync of the WAL). It still survives a crash of the
process, and it becomes machine-crash durable with the next FULL commit or
checkpoint of the same file (an fsync of the WAL flushes every frame before it).
A power loss can only take back the newest relaxed transactions, never a FULL one
or anything committed before one: WAL recovery keeps the longest checksummed prefix
of the log. Only writes that can be replayed safely (consumer offsets of idempotent
stages) are relaxed; see docs/operations.md.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread

from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, Unavailable

__all__ = ["SqliteAdapter", "SqliteDatabase", "Synchronous", "select_in"]

T = TypeVar("T")

Synchronous = Literal["FULL", "NORMAL", "OFF"]


class SqliteDatabase:
    """A SQLite file and the worker thread that serialises access to it."""

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL") -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            _create_private(self.path)
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self.synchronous: Synchronous = synchronous
        """The level of every transaction that is not relaxed."""
        self.relaxed: Synchronous = "NORMAL" if synchronous == "FULL" else synchronous
        """The level of a relaxed transaction (never stronger than ``synchronous``)."""
        self._level: Synchronous = synchronous
        self._limiter = anyio.CapacityLimiter(1)
        self._reader: sqlite3.Connection | None = None
        self._closed = False

    def execute_script(self, script: str) -> None:
        """Run DDL synchronously (at construction time, before any worker call)."""
        self._conn.executescript(script)

    def transaction(self, fn: Callable[[sqlite3.Connection], T], *, relaxed: bool = False) -> T:
        """Run ``fn`` inside BEGIN IMMEDIATE ... COMMIT in the calling thread.

        ``relaxed=True`` commits at :attr:`relaxed` (``NORMAL``) instead of
        :attr:`synchronous`: durable across a process crash, and across a power loss
        once a later non-relaxed commit of this file returned.
        """
        if self._closed:
            raise ChatcoreClosed(f"database {self.path} is closed")
        conn = self._conn
        level = self.relaxed if relaxed else self.synchronous
        if level != self._level:
            # Per connection, not stored in the file; set outside a transaction.
            conn.execute(f"PRAGMA synchronous={level}")
            self._level = level
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a transaction on the worker thread; maps sqlite errors to Unavailable."""
        try:
            return await anyio.to_thread.run_sync(self.transaction, fn, limiter=self._limiter)
        except sqlite3.Error as exc:
            raise Unavailable(f"sqlite {self.path}: {exc}") from exc

    def read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run the reads of ``fn`` on the calling thread, on a second connection of
        its own (read-only, opened on first use; WAL readers do not wait for the
        writer). It gives up at once (``sqlite3.OperationalError``) rather than wait
        when the file is busy, as it is while a WAL is recovered or reset. Each
        statement sees the latest commit."""
        if self._closed:
            raise ChatcoreClosed(f"database {self.path} is closed")
        if self._reader is None:
            if str(self.path) == ":memory:":  # a second connection would see another one
                raise sqlite3.OperationalError("an in-memory database has one connection")
            self._reader = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=0
            )
            self._reader.execute("PRAGMA query_only=ON")
        return fn(self._reader)

    async def offload(self, fn: Callable[[], T]) -> T:
        """Run a plain callable on the worker thread (callers manage transactions)."""
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._conn.close()
            if self._reader is not None:
                self._reader.close()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close, limiter=self._limiter)


IN_CHUNK = 500
"""Values bound per ``IN (...)`` list: well under SQLite's host-parameter limit."""


def select_in(
    conn: sqlite3.Connection,
    sql: str,
    values: Sequence[object],
    *,
    before: tuple[object, ...] = (),
) -> Iterator[Any]:
    """The rows of ``sql`` for every value of ``values``, in chunks of :data:`IN_CHUNK`.

    ``sql`` holds one ``{marks}`` where the ``IN`` list goes
    (``"SELECT data FROM t WHERE user IN ({marks})"``); ``before`` are the parameters
    bound ahead of the list. No values, no statement.
    """
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        yield from conn.execute(sql.format(marks=",".join("?" * len(chunk))), (*before, *chunk))


def _create_private(path: Path) -> None:
    """Create ``path``'s folder (0700) and the database file itself (0600) if missing;
    an existing database file is made 0600 too (its -wal/-shm follow its mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):  # left by an older version
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


class SqliteAdapter(ClosingContext):
    """Holds the database, creates the schema, closes the database only if it opened it."""

    _schema = ""

    def __init__(self, database: str | Path | SqliteDatabase) -> None:
        """Open the file at a path (owned) or use an open database (shared); create the tables.

        Raises Unavailable if the file cannot be opened or the tables cannot be created.
        """
        self._closed = False
        if isinstance(database, SqliteDatabase):
            self._db, self._owns_db = database, False
        else:
            try:
                self._db, self._owns_db = SqliteDatabase(database), True
            except (OSError, sqlite3.Error) as exc:
                raise Unavailable(f"sqlite {database}: {exc}") from exc
        try:
            self._db.execute_script(self._schema)
        except sqlite3.Error as exc:
            if self._owns_db:
                self._db.close()
            raise Unavailable(f"sqlite {self._db.path}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the file if this store opened it; later calls raise ChatcoreClosed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_db:
            await self._db.aclose()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise ChatcoreClosed(f"{type(self).__name__} used after aclose()")
        return await self._db.run(fn)
