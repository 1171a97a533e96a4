"""Ports for members who are not connected: the offline index and push notifications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from chatcore._resource import AsyncResource

__all__ = ["OfflineIndex", "PendingChat", "PushNotification", "PushNotifier"]


class PendingChat(msgspec.Struct, frozen=True):
    """What a user missed in one chat while offline."""

    chat_id: str
    first_seq: int
    last_seq: int
    count: int


class PushNotification(msgspec.Struct, frozen=True):
    """One coalesced push: "12 new messages from Alice" rather than 12 pushes.

    ``encrypted``: at least one of the messages counted was end-to-end encrypted; such
    a notification never carries a ``preview`` (the coalescer drops it, and every sender
    of :mod:`chatcore.push` ignores one anyway).
    """

    user: str
    chat_id: str
    count: int
    senders: tuple[str, ...]
    last_seq: int
    preview: str | None = None
    encrypted: bool = False


class OfflineIndex(AsyncResource, Protocol):
    async def add(self, users: Sequence[str], chat_id: str, seq: int) -> None:
        """Note that ``users`` missed message ``seq`` of a chat (idempotent per seq).

        Raises :class:`~chatcore.errors.InvalidRequest` if ``seq`` is below 1.
        """
        ...

    async def pending(self, user: str) -> list[PendingChat]:
        """What ``user`` missed, per chat."""
        ...

    async def clear(self, user: str, chat_ids: Sequence[str] | None = None) -> None:
        """Forget what ``user`` missed (in some chats, or all)."""
        ...


class PushNotifier(AsyncResource, Protocol):
    async def notify(self, notifications: Sequence[PushNotification]) -> None:
        """Hand notifications to the push service (APNs/FCM gateway, webhook, log)."""
        ...
