"""In-memory ``OfflineIndex`` and ``PushNotifier``: single process only."""

from __future__ import annotations

from collections.abc import Sequence

from chatcore._memory import MemoryAdapter
from chatcore.errors import InvalidRequest
from chatcore.offline._base import PendingChat, PushNotification

__all__ = ["MemoryOfflineIndex", "MemoryPushNotifier"]


class MemoryOfflineIndex(MemoryAdapter):
    """The seqs each user missed, per chat. Memory grows with the missed seqs."""

    def __init__(self) -> None:
        self._missed: dict[str, dict[str, set[int]]] = {}

    async def add(self, users: Sequence[str], chat_id: str, seq: int) -> None:
        """Note that ``users`` missed message ``seq`` of a chat (idempotent per seq).

        Raises ``InvalidRequest`` if ``seq`` is below 1, and ``ChatcoreClosed`` after
        ``aclose()``.
        """
        if seq < 1:
            raise InvalidRequest(f"seq starts at 1, got {seq}")
        await self._checkpoint()
        for user in users:
            self._missed.setdefault(user, {}).setdefault(chat_id, set()).add(seq)

    async def pending(self, user: str) -> list[PendingChat]:
        """What ``user`` missed, per chat, ordered by ``chat_id``.

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        chats = self._missed.get(user, {})
        return [
            PendingChat(chat_id, min(seqs), max(seqs), len(seqs))
            for chat_id, seqs in sorted(chats.items())
        ]

    async def clear(self, user: str, chat_ids: Sequence[str] | None = None) -> None:
        """Forget what ``user`` missed in ``chat_ids`` (``None``: all); unknown ones are fine.

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        if chat_ids is None:
            self._missed.pop(user, None)
            return
        chats = self._missed.get(user)
        if chats is None:
            return
        for chat_id in chat_ids:
            chats.pop(chat_id, None)
        if not chats:
            del self._missed[user]


class MemoryPushNotifier(MemoryAdapter):
    """Collects notifications in ``sent``, oldest first (for tests and demos)."""

    def __init__(self) -> None:
        self.sent: list[PushNotification] = []

    async def notify(self, notifications: Sequence[PushNotification]) -> None:
        """Append ``notifications`` to ``sent``. Raises ``ChatcoreClosed`` after ``aclose()``."""
        await self._checkpoint()
        self.sent.extend(notifications)
