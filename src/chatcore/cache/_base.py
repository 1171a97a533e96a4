"""The HotCache port: the last N messages of each chat, for fast recent reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from chatcore._resource import AsyncResource
from chatcore.model import StoredMessage

__all__ = ["ChatBoundedCache", "HotCache"]


class HotCache(AsyncResource, Protocol):
    """The last N messages of each chat, always one contiguous run of seqs."""

    async def push(self, messages: Sequence[StoredMessage], *, per_chat: int | None = None) -> None:
        """Add messages, in any order; the chat keeps a contiguous run of the newest N.

        N is ``per_chat``, or the backend's own ``per_chat`` option when None; a smaller
        N than a chat holds trims it. Raises ``InvalidRequest`` if ``per_chat`` < 1.

        After a push a chat holds the longest contiguous run of seqs that ends at the
        highest seq it knows (cached or pushed), cut to the newest N:

        - a seq already held is ignored (the first copy wins);
        - the seqs right after the newest are appended, the oldest dropped past N;
        - a seq further ahead (a gap: cached up to 10 and 13 arrives) restarts the
          chat's cache at that message (the store has the rest);
        - seqs right before the oldest fill back while the chat has room; older ones
          are ignored.
        """
        ...

    async def recent(self, chat_id: str) -> list[StoredMessage]:
        """The cached messages of a chat ascending by seq (contiguous, possibly empty)."""
        ...


@runtime_checkable
class ChatBoundedCache(Protocol):
    """An optional capability: a cache in this process's memory that bounds how many
    chats it keeps. ``ChatNode`` applies ``NodeOptions.hot_cache_max_chats`` to one."""

    def limit_chats(self, max_chats: int) -> None:
        """Keep at most ``max_chats`` chats, least recently used dropped first; raises
        ``InvalidRequest`` if it is below 1."""
        ...
