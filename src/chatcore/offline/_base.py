"""Ports for members who are not connected: the offline index and push notifications."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

import msgspec

__all__ = ["OfflineIndex", "PendingChat", "PushNotification", "PushNotifier"]


class PendingChat(msgspec.Struct, frozen=True):
    """What a user missed in one chat while offline."""

    chat_id: str
    first_seq: int
    last_seq: int
    count: int


class PushNotification(msgspec.Struct, frozen=True):
    """One coalesced push: "12 new messages from Alice" rather than 12 pushes."""

    user: str
    chat_id: str
    count: int
    senders: tuple[str, ...]
    last_seq: int
    preview: str | None = None


class _Closable(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        ...


class OfflineIndex(_Closable, Protocol):
    async def add(self, users: Sequence[str], chat_id: str, seq: int) -> None:
        """Note that ``users`` missed message ``seq`` of a chat (idempotent per seq)."""
        ...

    async def pending(self, user: str) -> list[PendingChat]:
        """What ``user`` missed, per chat."""
        ...

    async def clear(self, user: str, chat_ids: Sequence[str] | None = None) -> None:
        """Forget what ``user`` missed (in some chats, or all)."""
        ...


class PushNotifier(_Closable, Protocol):
    async def notify(self, notifications: Sequence[PushNotification]) -> None:
        """Hand notifications to the push service (APNs/FCM gateway, webhook, log)."""
        ...
