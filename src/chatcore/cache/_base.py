"""The HotCache port: the last N messages of each chat, for fast recent reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatcore._resource import AsyncResource
from chatcore.model import StoredMessage

__all__ = ["HotCache"]


class HotCache(AsyncResource, Protocol):
    async def push(self, messages: Sequence[StoredMessage]) -> None:
        """Add messages; keeps the last N per chat by seq; a seq already held is ignored."""
        ...

    async def recent(self, chat_id: str) -> list[StoredMessage]:
        """The cached messages of a chat ascending by seq (contiguous, possibly empty)."""
        ...
