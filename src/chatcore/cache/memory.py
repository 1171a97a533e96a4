"""In-memory ``HotCache``: the last ``per_chat`` messages of each chat; single process only.

A chat's cached messages are always one contiguous run of seqs. After a ``push``, a
chat holds the longest contiguous run of seqs that ends at the highest seq it knows
(cached or pushed), cut to the newest ``per_chat``. So, whatever the order of a batch:

- a seq already held is ignored (the first copy wins);
- the seqs right after the newest are appended, and the oldest dropped past ``per_chat``;
- a seq further ahead (a gap: cached up to 10 and 13 arrives) restarts the chat's
  cache at that message, since recent reads want the newest and the store has the rest;
- seqs right before the oldest fill back while the chat has room (late copies close a
  gap); older ones are ignored.

``max_chats`` (default 10 000; ``None``: no limit) bounds memory by dropping the chat
pushed to or read least recently.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence

from chatcore._memory import MemoryAdapter
from chatcore.cache._rules import (
    DEFAULT_MAX_CHATS,
    DEFAULT_PER_CHAT,
    check_max_chats,
    check_per_chat,
)
from chatcore.model import StoredMessage

__all__ = ["MemoryHotCache"]


class MemoryHotCache(MemoryAdapter):
    """The last ``per_chat`` (default 100) messages of each chat, contiguous by seq."""

    def __init__(
        self, *, per_chat: int = DEFAULT_PER_CHAT, max_chats: int | None = DEFAULT_MAX_CHATS
    ) -> None:
        """Raises ``InvalidRequest`` if ``per_chat`` is below 1 or ``max_chats`` is."""
        check_per_chat(per_chat)
        if max_chats is not None:
            check_max_chats(max_chats)
        self._per_chat = per_chat
        self._max_chats = max_chats
        self._chats: OrderedDict[str, deque[StoredMessage]] = OrderedDict()

    @property
    def max_chats(self) -> int | None:
        """The most chats kept (None: no limit)."""
        return self._max_chats

    def limit_chats(self, max_chats: int) -> None:
        """Keep at most ``max_chats`` chats from now on (the least recently used are
        dropped at once); raises ``InvalidRequest`` if it is below 1."""
        self._max_chats = check_max_chats(max_chats)
        self._evict()

    async def push(self, messages: Sequence[StoredMessage], *, per_chat: int | None = None) -> None:
        """Add messages by the rules of the module docstring, keeping ``per_chat`` (or
        the cache's own ``per_chat``) per chat.

        Raises ``ChatcoreClosed`` after ``aclose()``, ``InvalidRequest`` if ``per_chat`` < 1.
        """
        keep = self._per_chat if per_chat is None else check_per_chat(per_chat)
        await self._checkpoint()
        by_chat: dict[str, dict[int, StoredMessage]] = {}
        for message in messages:
            by_chat.setdefault(message.chat_id, {}).setdefault(message.seq, message)
        for chat_id, pushed in by_chat.items():
            self._merge(chat_id, pushed, keep)

    async def recent(self, chat_id: str) -> list[StoredMessage]:
        """The cached messages of a chat ascending by seq (contiguous, possibly empty).

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        cached = self._chats.get(chat_id)
        if cached is None:
            return []
        self._chats.move_to_end(chat_id)
        return list(cached)

    def _merge(self, chat_id: str, pushed: dict[int, StoredMessage], keep: int) -> None:
        cached = self._chats.pop(chat_id, deque())
        low, high = min(pushed), max(pushed)
        if cached and low == cached[-1].seq + 1 and high - low + 1 == len(pushed):
            cached.extend(pushed[seq] for seq in range(low, high + 1))
            while len(cached) > keep:
                cached.popleft()
            self._chats[chat_id] = cached
            self._evict()
            return
        known = pushed | {m.seq: m for m in cached}
        seq = max(known)
        run: deque[StoredMessage] = deque()
        while seq in known and len(run) < keep:
            run.appendleft(known[seq])
            seq -= 1
        self._chats[chat_id] = run
        self._evict()

    def _evict(self) -> None:
        while self._max_chats is not None and len(self._chats) > self._max_chats:
            self._chats.popitem(last=False)
