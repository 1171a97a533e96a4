"""Cassandra ``PushTokenStore``: the push targets of a production deployment.

One partition per user, ``push_targets (user_id, device)`` holding the msgpack
``PushTarget`` and ``registered`` (microseconds, rising within a process). ``register``
writes the row, then reads the user's partition and deletes the oldest devices past
``max_devices_per_user`` (concurrent registrations of one user may briefly leave one
more: each trims what it saw). ``drop`` is a lightweight transaction (``IF data = ?``),
so a device that registered a new target meanwhile keeps it; it is rare, its cost does
not matter. Made by :meth:`chatcore.store.cassandra.CassandraStores.push_tokens`,
sharing the stores' connection; the table comes with schema version 2.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from chatcore.push._base import PushTarget
from chatcore.push.targets import TargetRules, check_target
from chatcore.store._cassandra_session import CassandraAdapter, CassandraSession

__all__ = ["CassandraPushTokenStore"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(PushTarget).decode


class CassandraPushTokenStore(CassandraAdapter):
    """Push targets in Cassandra, one partition per user; ``rules`` checks every target."""

    _STATEMENTS: ClassVar[dict[str, str]] = {
        "put": "INSERT INTO {ks}.push_targets (user_id, device, data, registered) "
        "VALUES (?, ?, ?, ?)",
        "devices": "SELECT device, registered FROM {ks}.push_targets WHERE user_id = ?",
        "of_user": "SELECT data FROM {ks}.push_targets WHERE user_id = ?",
        "delete": "DELETE FROM {ks}.push_targets WHERE user_id = ? AND device = ?",
        "drop": "DELETE FROM {ks}.push_targets WHERE user_id = ? AND device = ? IF data = ?",
    }

    def __init__(
        self,
        db: CassandraSession,
        prepared: Mapping[str, Any],
        *,
        rules: TargetRules | None = None,
    ) -> None:
        super().__init__(db, prepared)
        self._rules = rules or TargetRules()
        self._last_us = 0

    async def register(self, target: PushTarget) -> None:
        """Keep ``target`` for its device, forgetting the user's oldest beyond the limit.

        Raises ``InvalidRequest`` for a bad target, ``Unavailable`` if Cassandra fails
        (registering again is safe) and ``ChatcoreClosed`` after ``aclose()``.
        """
        check_target(target, self._rules)
        self._check()
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
        row = (target.user, target.device, _encode(target), self._last_us)
        await self._db.execute(self._q["put"], row)
        rows = await self._db.execute(self._q["devices"], (target.user,))
        extra = len(rows) - self._rules.max_devices_per_user
        if extra > 0:
            oldest = sorted(rows, key=lambda r: (r["registered"] or 0, r["device"]))[:extra]
            await self._db.execute_all(
                [(self._q["delete"], (target.user, r["device"])) for r in oldest]
            )

    async def unregister(self, user: str, device: str) -> None:
        """Forget the device's target. Raises ``Unavailable``, ``ChatcoreClosed``."""
        self._check()
        await self._db.execute(self._q["delete"], (user, device))

    async def targets(self, users: Sequence[str]) -> list[PushTarget]:
        """The targets of ``users``' devices, one read per user run concurrently.

        Raises ``Unavailable`` if Cassandra fails and ``ChatcoreClosed`` after ``aclose()``.
        """
        self._check()
        wanted = list(dict.fromkeys(users))
        results = await self._db.execute_all([(self._q["of_user"], (u,)) for u in wanted])
        return [_decode(row["data"]) for rows in results for row in rows]

    async def drop(self, target: PushTarget) -> None:
        """Forget ``target`` if its device still has it. Raises Unavailable, ChatcoreClosed."""
        self._check()
        await self._db.applied(self._q["drop"], (target.user, target.device, _encode(target)))
