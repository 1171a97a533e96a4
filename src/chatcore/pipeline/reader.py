"""Reading: history pages, catch-up sync and the chat list, from HotCache then store.

Recent messages come from the HotCache when it covers the asked range, older ones
from the MessageStore. Pages hold messages in their current state: the HotCache
keeps first copies, so the lifecycle events of its run are folded into them (every
event of a cached message is cached too: it came later); stored messages were
updated by the HistoryWorker, and events in the same page are folded again in case
it has not yet. Nothing here checks permissions; the caller does.

Unread counts stay O(1) per chat and leave events out: each message records how many
messages (not events) the chat holds up to it (``counted``, given by the Sequencer),
so unread is the last message's count minus the count at the read watermark: two
point reads, usually from the HotCache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from chatcore.cache._base import HotCache
from chatcore.errors import InvalidRequest
from chatcore.model import ChatInfo, ChatState, HistoryPage, StoredMessage, SyncResult, Watermarks
from chatcore.offline._base import OfflineIndex
from chatcore.pipeline.lifecycle import fold
from chatcore.receipts import unread_count
from chatcore.store._base import MembershipStore, MessageStore, ReceiptStore

__all__ = ["HistoryReader"]


class HistoryReader:
    """Answers history, sync and chat-list reads."""

    def __init__(
        self,
        messages: MessageStore,
        cache: HotCache,
        receipts: ReceiptStore,
        membership: MembershipStore,
        offline: OfflineIndex,
        *,
        max_page: int = 200,
        sync_per_chat: int = 100,
    ) -> None:
        """``max_page``: the largest history page; ``sync_per_chat``: the most missed
        messages one sync returns per chat (the rest is marked ``truncated``)."""
        self._messages = messages
        self._cache = cache
        self._receipts = receipts
        self._membership = membership
        self._offline = offline
        self.max_page = max_page
        self.sync_per_chat = sync_per_chat

    async def page(
        self,
        chat_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        since: int = 0,
    ) -> HistoryPage:
        """A page of history; raises InvalidRequest for a bad limit or bounds.

        ``since``: only messages after it (a member who joined with history hidden).
        """
        if not 1 <= limit <= self.max_page:
            raise InvalidRequest(f"limit must be 1..{self.max_page}, got {limit}")
        if (before is not None and before < 0) or (after is not None and after < 0):
            raise InvalidRequest("before/after must be >= 0")
        if since > 0:
            return _hidden_before(since, await self._since(chat_id, before, after, limit, since))
        return await self._page(chat_id, before=before, after=after, limit=limit)

    async def _since(
        self, chat_id: str, before: int | None, after: int | None, limit: int, since: int
    ) -> HistoryPage:
        if before is not None and before <= since + 1:
            return HistoryPage([], False)
        if before is None and after is None:  # the latest page, but none at or below since
            page = await self._page(chat_id, limit=limit)
            shown = [m for m in page.messages if m.seq > since]
            return HistoryPage(shown, page.has_more and len(shown) == len(page.messages))
        after = since if after is None else max(after, since)
        return await self._page(chat_id, before=before, after=after, limit=limit)

    async def _page(
        self, chat_id: str, *, before: int | None = None, after: int | None = None, limit: int
    ) -> HistoryPage:
        cached = fold(await self._cache.recent(chat_id))
        hit = _from_cache(cached, before=before, after=after, limit=limit)
        if hit is not None:
            return hit
        rows = fold(
            await self._messages.range(chat_id, before=before, after=after, limit=limit + 1)
        )
        if len(rows) <= limit:
            return HistoryPage(rows, False)
        if after is not None:
            return HistoryPage(rows[:limit], True)
        return HistoryPage(rows[1:], True)

    async def last_seq(self, chat_id: str) -> int:
        cached = await self._cache.recent(chat_id)
        stored = await self._messages.last_seq(chat_id)
        return max(stored, cached[-1].seq if cached else 0)

    async def states(
        self, user: str, chats: Sequence[ChatInfo], *, with_others: bool = False
    ) -> list[ChatState]:
        """Each chat's last seq and the user's watermarks and unread count
        (and, ``with_others``, the other members' watermarks)."""
        marks = await self._receipts.for_user(user, [c.chat_id for c in chats])
        out = []
        for chat in chats:
            last = await self.last_seq(chat.chat_id)
            wm = marks.get(chat.chat_id) or Watermarks(chat.chat_id, user)
            others: tuple[Watermarks, ...] = ()
            if with_others:
                every = await self._receipts.for_chat(chat.chat_id)
                others = tuple(w for u, w in sorted(every.items()) if u != user)
            since = chat.visible_after(user)  # what was sent before they joined is not unread
            unread = await self._unread(chat.chat_id, last, max(wm.read_seq, since))
            state = ChatState(chat, last, wm.read_seq, wm.delivered_seq, unread, others=others)
            out.append(state)
        return out

    async def _unread(self, chat_id: str, last: int, read: int) -> int:
        """Messages (not events) after seq ``read`` up to ``last``."""
        if read >= last:
            return 0
        top, bottom = await self._count_at(chat_id, last), await self._count_at(chat_id, read)
        if top is None or bottom is None:
            return unread_count(last, Watermarks(chat_id, "", read, read))
        return max(0, top - bottom)

    async def _count_at(self, chat_id: str, seq: int) -> int | None:
        if seq == 0:
            return 0
        cached = await self._cache.recent(chat_id)
        if cached and cached[0].seq <= seq <= cached[-1].seq:
            return cached[seq - cached[0].seq].count()
        found = await self._messages.range(chat_id, after=seq - 1, limit=1)
        return found[0].count() if found and found[0].seq == seq else None

    async def chats_of(self, user: str) -> list[ChatInfo]:
        chats = []
        for chat_id in await self._membership.chats_of(user):
            chat = await self._membership.get_chat(chat_id)
            if chat is not None:
                chats.append(chat)
        return chats

    async def sync(self, user: str, cursors: Mapping[str, int] | None = None) -> SyncResult:
        """What ``user`` missed since ``cursors`` (chat → last seq held), and chat states.

        Without cursors: the state of every chat of the user and no messages. Chats the
        user is not a member of are left out.
        """
        mine = await self.chats_of(user)
        if cursors is not None:
            mine = [c for c in mine if c.chat_id in cursors]
        states = await self.states(user, mine)
        messages: list[StoredMessage] = []
        result: list[ChatState] = []
        for state in states:
            cursor = None if cursors is None else cursors[state.chat.chat_id]
            if cursor is not None:
                cursor = max(cursor, state.chat.visible_after(user))
            if cursor is not None and cursor < state.last_seq:
                page = await self.page(
                    state.chat.chat_id,
                    after=cursor,
                    limit=min(self.sync_per_chat, self.max_page),
                    since=state.chat.visible_after(user),
                )
                messages.extend(page.messages)
                state = state._replace(truncated=page.has_more)
            result.append(state)
        await self._offline.clear(user, [s.chat.chat_id for s in result])
        return SyncResult(messages, result)


def _hidden_before(since: int, page: HistoryPage) -> HistoryPage:
    """``page`` with the events that change messages before ``since`` emptied (their
    seq stays, so the member's seqs stay contiguous; what they changed stays hidden)."""
    messages = [
        msgspec.structs.replace(m, body="", target=0) if m.is_event and m.target <= since else m
        for m in page.messages
    ]
    return HistoryPage(messages, page.has_more)


def _from_cache(
    cached: list[StoredMessage], *, before: int | None, after: int | None, limit: int
) -> HistoryPage | None:
    """The page if the cache (the newest contiguous run of a chat) covers it, else None."""
    if not cached:
        return None
    lo, hi = cached[0].seq, cached[-1].seq
    end = hi + 1 if before is None else min(before, hi + 1)  # exclusive upper bound
    if after is not None:
        if after + 1 < lo:
            return None
        if end <= after + 1:
            return HistoryPage([], False)
        picked = cached[after + 1 - lo : end - lo][:limit]
        return HistoryPage(picked, bool(picked) and picked[-1].seq < end - 1)
    start = max(end - limit, 1)
    if start < lo:
        return None
    return HistoryPage(cached[start - lo : end - lo], start > 1)
