"""One SQLite file shared by the embedded backends, used from worker threads.

Every call runs in a worker thread, one at a time per database (SQLite allows one
writer anyway), inside a transaction that commits on success and rolls back on
error. WAL journal with ``synchronous=FULL``: a transaction that returned survives
a crash of the process and of the machine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from chatcore.errors import ChatcoreClosed, Unavailable

__all__ = ["SqliteDatabase"]

T = TypeVar("T")


class SqliteDatabase:
    """A SQLite file and the worker thread that serialises access to it."""

    def __init__(
        self, path: str | Path, *, synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL"
    ) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._limiter = anyio.CapacityLimiter(1)
        self._closed = False

    def execute_script(self, script: str) -> None:
        """Run DDL synchronously (at construction time, before any worker call)."""
        self._conn.executescript(script)

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` inside BEGIN IMMEDIATE ... COMMIT in the calling thread."""
        if self._closed:
            raise ChatcoreClosed(f"database {self.path} is closed")
        conn = self._conn
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

    async def offload(self, fn: Callable[[], T]) -> T:
        """Run a plain callable on the worker thread (callers manage transactions)."""
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._conn.close()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close, limiter=self._limiter)
