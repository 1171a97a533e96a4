"""SQLite ``KeyDirectory``: durable, one process at a time (the embedded backends).

One table, ``device_keys (user, device)``; a publish reads the device's row and the
user's device count and writes in one transaction, so the rules hold under
concurrent calls.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from chatcore._sqlite import SqliteAdapter, SqliteDatabase, select_in
from chatcore.keys._base import DeviceKey
from chatcore.keys.rules import KeyRules, check_publish

__all__ = ["SqliteKeyDirectory"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_keys (
    user TEXT NOT NULL, device TEXT NOT NULL, version INTEGER NOT NULL,
    public_key TEXT NOT NULL, PRIMARY KEY (user, device)) WITHOUT ROWID;
"""


class SqliteKeyDirectory(SqliteAdapter):
    """Device keys in a SQLite file: a path (opened and closed by the directory) or a
    shared :class:`~chatcore._sqlite.SqliteDatabase` (its owner closes it).

    ``rules`` (``KeyRules()``) checks every publish. Raises ``Unavailable`` if the file
    cannot be opened or the table cannot be created.
    """

    _schema = _SCHEMA

    def __init__(
        self, database: str | Path | SqliteDatabase, *, rules: KeyRules | None = None
    ) -> None:
        super().__init__(database)
        self._rules = rules or KeyRules()

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
            sql = (
                "SELECT user, device, version, public_key FROM device_keys WHERE user IN ({marks})"
            )
            return [DeviceKey(*row) for row in select_in(c, sql, wanted)]

        return await self._run(read)

    async def revoke(self, user: str, device: str) -> bool:
        """See :meth:`KeyDirectory.revoke`; also ``Unavailable``, ``ChatcoreClosed``."""

        def revoke(c: sqlite3.Connection) -> bool:
            cur = c.execute("DELETE FROM device_keys WHERE user = ? AND device = ?", (user, device))
            return cur.rowcount > 0

        return await self._run(revoke)
