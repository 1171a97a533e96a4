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
from types import TracebackType
from typing import Self

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.model import PresenceState
from chatcore.presence.rules import PresenceRules, UserPresence

__all__ = ["MemoryPresenceStore"]

_Subscriber = tuple[MemoryObjectSendStream[PresenceState], MemoryObjectReceiveStream[PresenceState]]


class MemoryPresenceStore:
    """Presence of users' devices held in this process's memory.

    ``rules`` gives the timings (only its transitions are used: ``touch`` always gets
    its TTL from the caller); ``buffer`` (default 1000) is how many transitions each
    subscriber may fall behind before its oldest are dropped.
    """

    def __init__(self, *, rules: PresenceRules | None = None, buffer: int = 1000) -> None:
        if buffer < 1:
            raise InvalidRequest(f"buffer must be at least 1, got {buffer}")
        self._rules = rules or PresenceRules()
        self._buffer = buffer
        self._users: dict[str, UserPresence] = {}
        self._with_devices: set[str] = set()
        self._subscribers: list[_Subscriber] = []
        self._closed = False
        self.dropped = 0
        """Transitions dropped from full subscriber buffers so far."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Mark closed and end every open ``changes()`` iterator. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for send, _ in self._subscribers:
            send.close()
        self._subscribers.clear()

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
        send, receive = anyio.create_memory_object_stream[PresenceState](self._buffer)
        subscriber = (send, receive)
        self._subscribers.append(subscriber)
        try:
            with receive:
                yield receive
        finally:
            send.close()
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

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
            for subscriber in list(self._subscribers):
                self._offer(subscriber, change)

    def _offer(self, subscriber: _Subscriber, change: PresenceState) -> None:
        send, receive = subscriber
        try:
            send.send_nowait(change)
        except anyio.WouldBlock:
            receive.receive_nowait()
            self.dropped += 1
            send.send_nowait(change)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._subscribers.remove(subscriber)

    async def _checkpoint(self) -> None:
        if self._closed:
            raise ChatcoreClosed("MemoryPresenceStore used after aclose()")
        await anyio.lowlevel.checkpoint()
