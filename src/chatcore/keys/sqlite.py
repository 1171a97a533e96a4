"""SQLite ``KeyDirectory``: durable, one process at a time (the embedded backends).

One table, ``device_keys (user, device)``; a publish reads the device's row and the
user's device count and writes in one transaction, so the rules hold under
concurrent calls.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from chatcore._resource import ClosingContext
from chatcore._sqlite import SqliteDatabase
from chatcore.errors import ChatcoreClosed, Unavailable
from chatcore.keys._base import DeviceKey
from chatcore.keys.rules import KeyRules, check_publish

__all__ = ["SqliteKeyDirectory"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_keys (
    user TEXT NOT NULL, device TEXT NOT NULL, version INTEGER NOT NULL,
    public_key TEXT NOT NULL, PRIMARY KEY (user, device)) WITHOUT ROWID;
"""
_IN_CHUNK = 500  # host parameters per statement, well under SQLite's limit


class SqliteKeyDirectory(ClosingContext):
    """Device keys in a SQLite file: a path (opened and closed by the directory) or a
    shared :class:`~chatcore._sqlite.SqliteDatabase` (its owner closes it).

    ``rules`` (``KeyRules()``) checks every publish. Raises ``Unavailable`` if the file
    cannot be opened or the table cannot be created.
    """

    def __init__(
        self, database: str | Path | SqliteDatabase, *, rules: KeyRules | None = None
    ) -> None:
        self._rules = rules or KeyRules()
        self._closed = False
        if isinstance(database, SqliteDatabase):
            self._db, self._owns_db = database, False
        else:
            try:
                self._db, self._owns_db = SqliteDatabase(database), True
            except (OSError, sqlite3.Error) as exc:
                raise Unavailable(f"sqlite {database}: {exc}") from exc
        try:
            self._db.execute_script(_SCHEMA)
        except sqlite3.Error as exc:
            if self._owns_db:
                self._db.close()
            raise Unavailable(f"sqlite {self._db.path}: {exc}") from exc

    async def publish(self, key: DeviceKey) -> bool:
        """See :meth:`KeyDirectory.publish`; also ``Unavailable``, ``ChatcoreClosed``."""

        def publish(c: sqlite3.Connection) -> bool:
            rows = c.execute(
                "SELECT device, version, public_key FROM device_keys WHERE user = ?", (key.user,)
            ).fetchall()
            current = next(
                (DeviceKey(key.user, d, v, p) for d, v, p in rows if d == key.device), None
            )
            if not check_publish(key, current, len(rows), self._rules):
                return False
            c.execute(
                "INSERT OR REPLACE INTO device_keys (user, device, version, public_key) "
                "VALUES (?, ?, ?, ?)",
                (key.user, key.device, key.version, key.public_key),
            )
            return True

        return await self._run(publish)

    async def keys(self, users: Sequence[str]) -> list[DeviceKey]:
        """See :meth:`KeyDirectory.keys`; also ``Unavailable``, ``ChatcoreClosed``."""
        wanted = list(dict.fromkeys(users))

        def read(c: sqlite3.Connection) -> list[DeviceKey]:
            found: list[DeviceKey] = []
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = c.execute(
                    "SELECT user, device, version, public_key FROM device_keys "
                    f"WHERE user IN ({marks})",
                    chunk,
                )
                found.extend(DeviceKey(*row) for row in rows)
            return found

        return await self._run(read)

    async def revoke(self, user: str, device: str) -> bool:
        """See :meth:`KeyDirectory.revoke`; also ``Unavailable``, ``ChatcoreClosed``."""

        def revoke(c: sqlite3.Connection) -> bool:
            cur = c.execute("DELETE FROM device_keys WHERE user = ? AND device = ?", (user, device))
            return cur.rowcount > 0

        return await self._run(revoke)

    async def aclose(self) -> None:
        """Close the file if this directory opened it; later calls raise ChatcoreClosed."""
        if self._closed:
            return
        self._closed = True
        if self._owns_db:
            await self._db.aclose()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise ChatcoreClosed(f"{type(self).__name__} used after aclose()")
        return await self._db.run(fn)
