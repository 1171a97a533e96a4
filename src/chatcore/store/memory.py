"""In-memory stores of messages, watermarks and membership: single process, not durable.

The data lives in the store object and is dropped by ``aclose()``. The rules every
backend shares (how watermarks advance, how member lists change, what a valid
message or range is) are in :mod:`chatcore.store._rules`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import msgspec

from chatcore._memory import MemoryAdapter
from chatcore.errors import NotFound
from chatcore.model import ChatInfo, ChatRoles, StoredMessage, Watermarks
from chatcore.store._rules import (
    advanced_all,
    advanced_watermarks,
    changed_members,
    check_limit,
    check_messages,
    unique,
)

__all__ = ["MemoryMembershipStore", "MemoryMessageStore", "MemoryReceiptStore"]


class _ChatHistory:
    """One chat's messages: by seq, seqs sorted for ranges, and by (sender, client_msg_id)."""

    __slots__ = ("by_client", "by_seq", "seqs")

    def __init__(self) -> None:
        self.by_seq: dict[int, StoredMessage] = {}
        self.seqs: list[int] = []
        self.by_client: dict[tuple[str, str], StoredMessage] = {}

    def add(self, message: StoredMessage) -> None:
        seq = message.seq
        if seq in self.by_seq:
            return
        self.by_seq[seq] = message
        if not self.seqs or seq > self.seqs[-1]:
            self.seqs.append(seq)  # the usual case: messages arrive in seq order
        else:
            bisect.insort(self.seqs, seq)
        key = (message.sender, message.client_msg_id)
        known = self.by_client.get(key)
        if known is None or seq < known.seq:
            self.by_client[key] = message

    def replace(self, message: StoredMessage) -> None:
        known = self.by_seq.get(message.seq)
        if known is None:
            self.add(message)
        elif message.changed_seq > known.changed_seq:
            self.by_seq[message.seq] = message
            key = (message.sender, message.client_msg_id)
            if self.by_client.get(key) is known:
                self.by_client[key] = message

    def range(self, after: int | None, before: int | None, limit: int) -> list[StoredMessage]:
        seqs = self.seqs
        lo = 0 if after is None else bisect.bisect_right(seqs, after)
        hi = len(seqs) if before is None else bisect.bisect_left(seqs, before)
        if after is None:
            lo = max(lo, hi - limit)  # the last ones below ``before`` (or the latest)
        else:
            hi = min(hi, lo + limit)  # the first ones above ``after``
        return [self.by_seq[s] for s in seqs[lo:hi]]


class MemoryMessageStore(MemoryAdapter):
    """A :class:`~chatcore.store.MessageStore` in this process's memory."""

    def __init__(self) -> None:
        self._chats: dict[str, _ChatHistory] = {}

    def _release(self) -> None:
        self._chats.clear()

    async def append(self, messages: Sequence[StoredMessage]) -> None:
        """Store messages; an existing ``(chat_id, seq)`` is kept as it is.

        Raises InvalidRequest (nothing stored) if a seq is below 1, ChatcoreClosed
        after ``aclose()``.
        """
        await self._checkpoint()
        check_messages(messages)
        for m in messages:
            self._history(m.chat_id).add(m)

    async def replace(self, messages: Sequence[StoredMessage]) -> None:
        """Store newer states of messages (see the port); InvalidRequest, ChatcoreClosed."""
        await self._checkpoint()
        check_messages(messages)
        for m in messages:
            self._history(m.chat_id).replace(m)

    def _history(self, chat_id: str) -> _ChatHistory:
        history = self._chats.get(chat_id)
        if history is None:
            history = self._chats[chat_id] = _ChatHistory()
        return history

    async def range(
        self,
        chat_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages ascending by seq; see ``MessageStore.range``.

        Raises InvalidRequest for a negative limit, ChatcoreClosed after ``aclose()``.
        """
        await self._checkpoint()
        check_limit(limit)
        history = self._chats.get(chat_id)
        return [] if history is None else history.range(after, before, limit)

    async def last_seq(self, chat_id: str) -> int:
        """The highest stored seq of a chat, 0 when it has none; ChatcoreClosed after close."""
        await self._checkpoint()
        history = self._chats.get(chat_id)
        return history.seqs[-1] if history is not None and history.seqs else 0

    async def find_client_msg(
        self, chat_id: str, sender: str, client_msg_id: str
    ) -> StoredMessage | None:
        """The lowest-seq message ``sender`` sent with ``client_msg_id``, if any.

        Raises ChatcoreClosed after ``aclose()``.
        """
        await self._checkpoint()
        history = self._chats.get(chat_id)
        return None if history is None else history.by_client.get((sender, client_msg_id))


class MemoryReceiptStore(MemoryAdapter):
    """A :class:`~chatcore.store.ReceiptStore` in this process's memory."""

    def __init__(self) -> None:
        self._chats: dict[str, dict[str, Watermarks]] = {}

    def _release(self) -> None:
        self._chats.clear()

    async def advance(
        self,
        chat_id: str,
        user: str,
        *,
        delivered_seq: int = 0,
        read_seq: int = 0,
        now_ms: int = 0,
    ) -> Watermarks:
        """Raise the watermarks (never lower them); returns them after the update.

        ``updated_ms`` becomes ``now_ms`` only if a watermark moved; a call that moves
        nothing stores nothing. Raises InvalidRequest for a negative seq,
        ChatcoreClosed after ``aclose()``.
        """
        await self._checkpoint()
        members = self._chats.get(chat_id)
        current = members.get(user) if members is not None else None
        if current is None:
            current = Watermarks(chat_id, user)
        after = advanced_watermarks(
            current, delivered_seq=delivered_seq, read_seq=read_seq, now_ms=now_ms
        )
        if after is not current:
            self._chats.setdefault(chat_id, {})[user] = after
        return after

    async def advance_many(self, targets: Sequence[Watermarks]) -> list[Watermarks | None]:
        """See :meth:`ReceiptStore.advance_many`; ChatcoreClosed after ``aclose()``."""
        await self._checkpoint()
        current = {
            (t.chat_id, t.user): found
            for t in targets
            if (found := self._chats.get(t.chat_id, {}).get(t.user)) is not None
        }
        results, moved = advanced_all(current, targets)
        for (chat_id, user), after in moved.items():
            self._chats.setdefault(chat_id, {})[user] = after
        return results

    async def get(self, chat_id: str, user: str) -> Watermarks:
        """The watermarks of one member (zeros when none); ChatcoreClosed after close."""
        await self._checkpoint()
        found = self._chats.get(chat_id, {}).get(user)
        return Watermarks(chat_id, user) if found is None else found

    async def for_chat(self, chat_id: str) -> dict[str, Watermarks]:
        """Every stored member's watermarks in a chat, by user; ChatcoreClosed after close."""
        await self._checkpoint()
        return dict(self._chats.get(chat_id, {}))

    async def for_user(self, user: str, chat_ids: Sequence[str]) -> dict[str, Watermarks]:
        """One user's watermarks by chat id (zeros when none); ChatcoreClosed after close."""
        await self._checkpoint()
        out: dict[str, Watermarks] = {}
        for chat_id in chat_ids:
            found = self._chats.get(chat_id, {}).get(user)
            out[chat_id] = Watermarks(chat_id, user) if found is None else found
        return out


class MemoryMembershipStore(MemoryAdapter):
    """A :class:`~chatcore.store.MembershipStore` in this process's memory."""

    def __init__(self) -> None:
        self._chats: dict[str, ChatInfo] = {}
        self._user_chats: dict[str, set[str]] = {}

    def _release(self) -> None:
        self._chats.clear()
        self._user_chats.clear()

    async def create_chat(self, chat: ChatInfo) -> ChatInfo:
        """Store a new chat, or return the stored one unchanged if the id exists.

        Members keep their given order; a repeated member is stored once. Raises
        ChatcoreClosed after ``aclose()``.
        """
        await self._checkpoint()
        existing = self._chats.get(chat.chat_id)
        if existing is not None:
            return existing
        stored = msgspec.structs.replace(chat, members=unique(chat.members))
        self._chats[chat.chat_id] = stored
        for user in stored.members:
            self._user_chats.setdefault(user, set()).add(chat.chat_id)
        return stored

    async def get_chat(self, chat_id: str) -> ChatInfo | None:
        """The chat with its current members, or None; ChatcoreClosed after close."""
        await self._checkpoint()
        return self._chats.get(chat_id)

    async def get_chats(self, chat_ids: Iterable[str]) -> dict[str, ChatInfo]:
        """The chats of ``chat_ids`` that exist, by id; ChatcoreClosed after close."""
        await self._checkpoint()
        chats = self._chats
        return {c: chats[c] for c in dict.fromkeys(chat_ids) if c in chats}

    async def update_members(
        self, chat_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> ChatInfo:
        """Append ``add`` (new members only), then take out ``remove``; returns the chat.

        Raises NotFound if there is no such chat, ChatcoreClosed after ``aclose()``.
        """
        await self._checkpoint()
        chat = self._chats.get(chat_id)
        if chat is None:
            raise NotFound(f"no chat {chat_id!r}")
        members = changed_members(chat.members, add=add, remove=remove)
        if members == chat.members:
            return chat
        for user in set(chat.members) - set(members):
            chats = self._user_chats[user]
            chats.discard(chat_id)
            if not chats:
                del self._user_chats[user]
        for user in set(members) - set(chat.members):
            self._user_chats.setdefault(user, set()).add(chat_id)
        updated = msgspec.structs.replace(chat, members=members)
        self._chats[chat_id] = updated
        return updated

    async def chats_of(self, user: str) -> list[str]:
        """The ids of the chats ``user`` is a member of, sorted; ChatcoreClosed after close."""
        await self._checkpoint()
        return sorted(self._user_chats.get(user, ()))

    async def set_roles(
        self, chat_id: str, roles: ChatRoles, *, expected: ChatRoles | None = None
    ) -> ChatInfo:
        """Replace the chat's roles (if still ``expected``, when given); raises
        NotFound, ChatcoreClosed after ``aclose()``."""
        await self._checkpoint()
        chat = self._chats.get(chat_id)
        if chat is None:
            raise NotFound(f"no chat {chat_id!r}")
        if expected is not None and chat.roles != expected:
            return chat
        updated = self._chats[chat_id] = msgspec.structs.replace(chat, roles=roles)
        return updated
