"""SQLite ``PushTokenStore``: durable, one process at a time (the embedded backends).

One table, ``push_targets (user, device)`` holding the msgpack ``PushTarget`` and
``pos``, the user's registration counter: the row with the lowest ``pos`` is the
device registered longest ago, the one forgotten past ``max_devices_per_user``.
``drop`` deletes a row only if it still holds the very target given (same bytes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import msgspec

from chatcore._sqlite import SqliteAdapter, SqliteDatabase, select_in
from chatcore.push._base import PushTarget
from chatcore.push.targets import TargetRules, check_target

__all__ = ["SqlitePushTokenStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS push_targets (
    user TEXT NOT NULL, device TEXT NOT NULL, pos INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (user, device)) WITHOUT ROWID;
"""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(PushTarget).decode


class SqlitePushTokenStore(SqliteAdapter):
    """Push targets in a SQLite file: a path (opened and closed by the store) or a shared
    :class:`~chatcore._sqlite.SqliteDatabase` (its owner closes it).

    ``rules`` (``TargetRules()``) checks every target. Raises ``Unavailable`` if the file
    cannot be opened or the table cannot be created.
    """

    _schema = _SCHEMA

    def __init__(
        self, database: str | Path | SqliteDatabase, *, rules: TargetRules | None = None
    ) -> None:
        self._rules = rules or TargetRules()
        super().__init__(database)

    async def register(self, target: PushTarget) -> None:
        """Keep ``target`` for its device, forgetting the user's oldest beyond the limit.

        Raises ``InvalidRequest`` for a bad target, ``Unavailable`` if SQLite fails and
        ``ChatcoreClosed`` after ``aclose()``.
        """
        check_target(target, self._rules)
        data, limit = _encode(target), self._rules.max_devices_per_user

        def register(c: sqlite3.Connection) -> None:
            (top,) = c.execute(
                "SELECT COALESCE(MAX(pos), 0) FROM push_targets WHERE user = ?", (target.user,)
            ).fetchone()
            c.execute(
                "INSERT OR REPLACE INTO push_targets (user, device, pos, data) VALUES (?, ?, ?, ?)",
                (target.user, target.device, top + 1, data),
            )
            c.execute(
                "DELETE FROM push_targets WHERE user = ? AND device IN (SELECT device FROM "
                "push_targets WHERE user = ? ORDER BY pos DESC LIMIT -1 OFFSET ?)",
                (target.user, target.user, limit),
            )

        await self._run(register)

    async def unregister(self, user: str, device: str) -> None:
        """Forget the device's target. Raises ``Unavailable``, ``ChatcoreClosed``."""
        await self._run(
            lambda c: c.execute(
                "DELETE FROM push_targets WHERE user = ? AND device = ?", (user, device)
            )
        )

    async def targets(self, users: Sequence[str]) -> list[PushTarget]:
        """The targets of ``users``' devices. Raises ``Unavailable``, ``ChatcoreClosed``."""
        wanted = list(dict.fromkeys(users))

        def read(c: sqlite3.Connection) -> list[bytes]:
            sql = "SELECT data FROM push_targets WHERE user IN ({marks})"
            return [row[0] for row in select_in(c, sql, wanted)]

        return [_decode(data) for data in await self._run(read)]

    async def drop(self, target: PushTarget) -> None:
        """Forget ``target`` if its device still has it. Raises Unavailable, ChatcoreClosed."""
        await self._run(
            lambda c: c.execute(
                "DELETE FROM push_targets WHERE user = ? AND device = ? AND data = ?",
                (target.user, target.device, _encode(target)),
            )
        )
