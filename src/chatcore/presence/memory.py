"""In-memory ``PresenceStore``: a thin shell around :mod:`chatcore.presence.rules`.

Single process only: subscribers see the transitions of this object alone. A user
stays in memory once seen (their ``last_seen`` is kept).

Each subscriber of :meth:`MemoryPresenceStore.changes` has its own bounded buffer;
when a subscriber falls ``buffer`` transitions behind, its oldest undelivered
transition is dropped (and counted in ``dropped``), so a slow subscriber never
blocks the store or the other subscribers and always ends up with the newest states.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

from chatcore._broadcast import Broadcast
from chatcore._memory import MemoryAdapter
from chatcore.model import PresenceState
from chatcore.presence.rules import PresenceRules, UserPresence, ttl_ms

__all__ = ["MemoryPresenceStore"]


class MemoryPresenceStore(MemoryAdapter):
    """Presence of users' devices held in this process's memory.

    ``rules`` gives the timings (only its transitions are used: ``touch`` always gets
    its TTL from the caller); ``buffer`` (default 1000) is how many transitions each
    subscriber may fall behind before its oldest are dropped.
    """

    def __init__(self, *, rules: PresenceRules | None = None, buffer: int = 1000) -> None:
        """Raises ``InvalidRequest`` if ``buffer`` is below 1."""
        self._changes = Broadcast[PresenceState](buffer=buffer)
        self._rules = rules or PresenceRules()
        self._users: dict[str, UserPresence] = {}
        self._with_devices: set[str] = set()

    @property
    def dropped(self) -> int:
        """Transitions dropped from full subscriber buffers so far."""
        return self._changes.dropped

    def _release(self) -> None:
        self._changes.close()  # ends every open ``changes()`` iterator

    async def touch(self, user: str, device: str, *, ttl_s: float, now_ms: int) -> bool:
        """Mark a device online until ``now + ttl``; True if the user was offline before.

        Raises ``InvalidRequest`` if ``ttl_s`` is not positive and finite, and
        ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        update = self._rules.touch(self._get(user), device, now_ms=now_ms, ttl_s=ttl_s)
        self._put(update.presence)
        self._publish(update.changes)
        return update.went_online

    async def touch_many(
        self, devices: Sequence[tuple[str, str]], *, ttl_s: float, now_ms: int
    ) -> list[bool]:
        """:meth:`touch` for each ``(user, device)``; raises like it, touching nothing."""
        ttl_ms(ttl_s)  # checked before anything is touched
        return [await self.touch(u, d, ttl_s=ttl_s, now_ms=now_ms) for u, d in devices]

    async def leave(self, user: str, device: str, *, now_ms: int) -> bool:
        """Mark a device offline now; True if this took the user offline.

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        update = self._rules.leave(self._get(user), device, now_ms=now_ms)
        self._put(update.presence)
        self._publish(update.changes)
        return update.went_offline

    async def states(self, users: Sequence[str], *, now_ms: int) -> dict[str, PresenceState]:
        """Presence of many users at ``now_ms`` (unknown users: offline, never seen).

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        return {user: self._get(user).state(now_ms) for user in users}

    async def expire(self, *, now_ms: int) -> list[PresenceState]:
        """Drop expired devices; the users who went offline, also sent to ``changes()``.

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        gone: list[PresenceState] = []
        for user in sorted(self._with_devices):
            update = self._rules.expire(self._users[user], now_ms=now_ms)
            self._put(update.presence)
            gone.extend(update.changes)
        self._publish(gone)
        return gone

    @asynccontextmanager
    async def changes(self) -> AsyncIterator[AsyncIterator[PresenceState]]:
        """Subscribe to online/offline transitions from now on (this process only).

        The iterator ends when the store is closed. Raises ``ChatcoreClosed`` after
        ``aclose()``.
        """
        await self._checkpoint()
        with self._changes.subscribe() as changes:
            yield changes

    def _get(self, user: str) -> UserPresence:
        return self._users.get(user) or UserPresence(user)

    def _put(self, presence: UserPresence) -> None:
        self._users[presence.user] = presence
        if presence.devices:
            self._with_devices.add(presence.user)
        else:
            self._with_devices.discard(presence.user)

    def _publish(self, changes: Iterable[PresenceState]) -> None:
        for change in changes:
            self._changes.publish(change)
