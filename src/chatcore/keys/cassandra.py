"""Cassandra ``KeyDirectory``: the device keys of a production deployment.

How this works: one partition per user, ``device_keys (user_id, device)`` holding each
device's ``version`` and ``public_key``, plus a static ``generation`` (one per user)
that every change raises. A publish or revoke reads the partition, checks the rules
(:mod:`chatcore.keys.rules`) on what it read, and writes in one single-partition
conditional batch ``IF generation = g``: a lightweight transaction, so two changes of
one user's devices never both apply on the same reading (the device limit and the
stale-version rule hold under concurrent calls, without a copy of the rules in CQL).
The loser reads again and retries. Keys change rarely, so the Paxos rounds cost
nothing that matters. Made by :meth:`chatcore.store.cassandra.CassandraStores.keys`,
sharing the stores' connection; the table comes with schema version 4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from chatcore.errors import Unavailable
from chatcore.keys._base import DeviceKey
from chatcore.keys.rules import KeyRules, check_publish
from chatcore.store._cassandra_session import (
    CassandraAdapter,
    CassandraSession,
    Row,
    cas_back_off,
)

__all__ = ["CassandraKeyDirectory"]

_CAS_ATTEMPTS = 32  # compare-and-set rounds before a change gives up (Unavailable)


class CassandraKeyDirectory(CassandraAdapter):
    """Device keys in Cassandra, one partition per user; ``rules`` checks every publish."""

    _STATEMENTS: ClassVar[dict[str, str]] = {
        "of_user": "SELECT device, version, public_key, generation FROM {ks}.device_keys "
        "WHERE user_id = ?",
        "bump": "UPDATE {ks}.device_keys SET generation = ? WHERE user_id = ? IF generation = ?",
        "put": "INSERT INTO {ks}.device_keys (user_id, device, version, public_key) "
        "VALUES (?, ?, ?, ?)",
        "delete": "DELETE FROM {ks}.device_keys WHERE user_id = ? AND device = ?",
    }

    def __init__(
        self, db: CassandraSession, prepared: Mapping[str, Any], *, rules: KeyRules | None = None
    ) -> None:
        super().__init__(db, prepared)
        self._rules = rules or KeyRules()

    async def publish(self, key: DeviceKey) -> bool:
        """See :meth:`KeyDirectory.publish`; also ``Unavailable`` (publishing again is
        safe), ``ChatcoreClosed``."""
        self._check()
        for attempt in range(_CAS_ATTEMPTS):
            await cas_back_off(attempt)
            devices, generation = await self._read(key.user)
            if not check_publish(key, devices.get(key.device), len(devices), self._rules):
                return False
            put = (self._q["put"], (key.user, key.device, key.version, key.public_key))
            if await self._commit(key.user, generation, put):
                return True
        raise Unavailable(f"cassandra: the keys of {key.user!r} kept changing; publish again")

    async def keys(self, users: Sequence[str]) -> list[DeviceKey]:
        """See :meth:`KeyDirectory.keys`: one read per user, run concurrently; also
        ``Unavailable``, ``ChatcoreClosed``."""
        self._check()
        wanted = list(dict.fromkeys(users))
        results = await self._db.execute_all([(self._q["of_user"], (u,)) for u in wanted])
        return [
            _key(user, row)
            for user, rows in zip(wanted, results, strict=True)
            for row in rows
            if row["device"] is not None
        ]

    async def revoke(self, user: str, device: str) -> bool:
        """See :meth:`KeyDirectory.revoke`; also ``Unavailable``, ``ChatcoreClosed``."""
        self._check()
        for attempt in range(_CAS_ATTEMPTS):
            await cas_back_off(attempt)
            devices, generation = await self._read(user)
            if device not in devices:
                return False
            if await self._commit(user, generation, (self._q["delete"], (user, device))):
                return True
        raise Unavailable(f"cassandra: the keys of {user!r} kept changing; revoke again")

    async def _read(self, user: str) -> tuple[dict[str, DeviceKey], int | None]:
        """The user's keys by device, and the partition's generation (None: never written)."""
        rows = await self._db.execute(self._q["of_user"], (user,))
        generation = rows[0]["generation"] if rows else None
        devices = {r["device"]: _key(user, r) for r in rows if r["device"] is not None}
        return devices, generation

    async def _commit(
        self, user: str, generation: int | None, change: tuple[Any, Sequence[object]]
    ) -> bool:
        """Apply ``change`` if the user's generation is still ``generation``."""
        bump = (self._q["bump"], ((generation or 0) + 1, user, generation))
        applied, _ = await self._db.applied(self._db.batch([bump, change]), ())
        return applied


def _key(user: str, row: Row) -> DeviceKey:
    return DeviceKey(user, row["device"], int(row["version"]), row["public_key"])
