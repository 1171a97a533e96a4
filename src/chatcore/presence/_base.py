"""The PresenceStore port: which devices of which users are online, with a TTL.

A device is online while its entry lives: ``touch`` (on connect and on every
heartbeat) sets it to expire ``ttl_s`` later. A user is online while any of their
devices is. ``last_seen`` is when the user was last known online: the latest touch,
or the disconnect of their last device.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from chatcore._resource import AsyncResource
from chatcore.model import PresenceState

__all__ = ["PresenceStore"]


class PresenceStore(AsyncResource, Protocol):
    async def touch(self, user: str, device: str, *, ttl_s: float, now_ms: int) -> bool:
        """Mark a device online until ``now + ttl``; True if the user was offline before.

        Raises :class:`~chatcore.errors.InvalidRequest` if ``ttl_s`` is not positive
        and finite.
        """
        ...

    async def touch_many(
        self, devices: Sequence[tuple[str, str]], *, ttl_s: float, now_ms: int
    ) -> list[bool]:
        """:meth:`touch` for each ``(user, device)``, in as few round trips as the
        backend allows (a gateway's heartbeat of all its devices); per device, whether
        its user came online. Raises InvalidRequest like :meth:`touch`, touching nothing.
        """
        ...

    async def leave(self, user: str, device: str, *, now_ms: int) -> bool:
        """Mark a device offline now; True only if this call took the user offline.

        False when the user keeps another live device, or was already offline (the
        device unknown or expired).
        """
        ...

    async def states(self, users: Sequence[str], *, now_ms: int) -> dict[str, PresenceState]:
        """Presence of many users in one batched call (every user asked is in the answer)."""
        ...

    async def expire(self, *, now_ms: int) -> list[PresenceState]:
        """Drop expired devices; the users who went offline because of it, sorted by user.

        They are also sent to :meth:`changes` subscribers. Each transition is
        reported once, whichever call (or process) notices it first.
        """
        ...

    def changes(self) -> AbstractAsyncContextManager[AsyncIterator[PresenceState]]:
        """Subscribe to online/offline transitions of every user (from any process)."""
        ...
