"""``HotCache`` conformance: what every backend of the port must do.

Besides the port's docstring, this pins how a cache stays contiguous: a seq beyond
a gap restarts the chat's cache at it; the seq right before the oldest is prepended
while there is room; anything older is ignored. Chat ids are unique per test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest

from chatcore.cache._base import HotCache
from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.model import Attachment, StoredMessage

__all__ = ["HotCacheSuite"]


PER_CHAT = 5


OpenCache = Callable[[int], Awaitable[HotCache]]


class CacheEnv:
    """One backend under test: ``open`` fresh caches, make messages of unique chats."""

    def __init__(self, open_cache: OpenCache) -> None:
        self._open = open_cache
        self._tag = uuid.uuid4().hex[:8]

    async def open(self, *, per_chat: int = PER_CHAT) -> HotCache:
        """A fresh, empty cache keeping ``per_chat`` messages per chat; closed after the test."""
        return await self._open(per_chat)

    def chat(self, name: str) -> str:
        return f"{name}-{self._tag}"


def msg(chat_id: str, seq: int, body: str | None = None) -> StoredMessage:
    return StoredMessage(
        chat_id=chat_id,
        seq=seq,
        message_id=1_000_000 + seq,
        sender="alice",
        client_msg_id=f"c{seq}",
        kind="text",
        body=f"message {seq}" if body is None else body,
        ts=1_750_000_000_000 + seq,
    )


def msgs(chat_id: str, seqs: range | list[int]) -> list[StoredMessage]:
    return [msg(chat_id, s) for s in seqs]


async def seqs_of(cache: HotCache, chat_id: str) -> list[int]:
    return [m.seq for m in await cache.recent(chat_id)]


class HotCacheSuite:
    """The ``HotCache`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_cache``: it returns an async callable giving a new,
    not yet entered, empty cache keeping ``per_chat`` messages per chat (a fresh key
    prefix on a shared service). The suite enters it and closes it after the test.
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def make_cache(self) -> OpenCache:
        """Override: new caches of the backend under test, given ``per_chat``."""
        raise NotImplementedError("override the make_cache fixture")

    @pytest.fixture
    async def env(self, make_cache: OpenCache) -> AsyncIterator[CacheEnv]:
        async with AsyncExitStack() as stack:

            async def open_cache(per_chat: int) -> HotCache:
                return await stack.enter_async_context(await make_cache(per_chat))

            yield CacheEnv(open_cache)

    async def test_unknown_chat_is_empty(self, env: CacheEnv) -> None:
        cache = await env.open()
        assert await cache.recent(env.chat("nothing")) == []

    async def test_recent_returns_what_was_pushed_ascending(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, range(1, 4)))
        await cache.push([msg(chat, 4)])
        assert await cache.recent(chat) == msgs(chat, range(1, 5))

    async def test_keeps_the_last_per_chat_messages(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, range(1, 4)))
        await cache.push(msgs(chat, range(4, 10)))
        await cache.push([msg(chat, 10)])
        assert await cache.recent(chat) == msgs(chat, range(10 - PER_CHAT + 1, 11))

    async def test_a_batch_is_applied_in_seq_order(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, [1, 2]))
        await cache.push(msgs(chat, [5, 3, 4]))
        assert await seqs_of(cache, chat) == [1, 2, 3, 4, 5]

    async def test_a_seq_already_held_is_ignored(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, range(1, 4)))
        await cache.push([msg(chat, 2, "rewritten"), msg(chat, 3, "rewritten")])
        await cache.push([msg(chat, 4, "first"), msg(chat, 4, "second")])
        assert await cache.recent(chat) == [*msgs(chat, range(1, 4)), msg(chat, 4, "first")]

    async def test_chats_are_kept_apart(self, env: CacheEnv) -> None:
        cache, a, b = await env.open(), env.chat("a"), env.chat("b")
        await cache.push([msg(a, 1), msg(b, 1), msg(a, 2), msg(b, 2), msg(b, 3)])
        assert await cache.recent(a) == msgs(a, [1, 2])
        assert await cache.recent(b) == msgs(b, [1, 2, 3])

    async def test_a_gap_restarts_the_chat_at_the_newer_message(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, range(1, 11)))
        await cache.push([msg(chat, 13)])
        assert await seqs_of(cache, chat) == [13]
        await cache.push([msg(chat, 14)])
        assert await seqs_of(cache, chat) == [13, 14]

    async def test_first_push_may_start_anywhere(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, [40, 41]))
        assert await seqs_of(cache, chat) == [40, 41]

    async def test_a_batch_with_a_gap_keeps_the_run_after_it(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, [1, 2, 3, 7, 8]))
        assert await seqs_of(cache, chat) == [7, 8]

    async def test_a_batch_continuing_the_run_past_a_gap_keeps_the_newest(
        self, env: CacheEnv
    ) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, [1, 2]))
        await cache.push(msgs(chat, [3, 5, 6]))
        assert await seqs_of(cache, chat) == [5, 6]

    async def test_the_seq_before_the_oldest_fills_back_while_there_is_room(
        self, env: CacheEnv
    ) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, [12, 13]))
        await cache.push([msg(chat, 11)])
        await cache.push(msgs(chat, [10, 9]))
        assert await seqs_of(cache, chat) == [9, 10, 11, 12, 13]
        await cache.push([msg(chat, 8)])
        assert await seqs_of(cache, chat) == [9, 10, 11, 12, 13]

    async def test_older_messages_not_adjacent_are_ignored(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, [10, 11]))
        await cache.push([msg(chat, 5)])
        await cache.push([msg(chat, 8)])
        assert await seqs_of(cache, chat) == [10, 11]

    async def test_a_late_duplicate_after_trimming_is_ignored(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, range(1, 9)))
        await cache.push([msg(chat, 3, "late copy")])
        assert await seqs_of(cache, chat) == [4, 5, 6, 7, 8]

    async def test_one_message_per_chat(self, env: CacheEnv) -> None:
        cache, chat = await env.open(per_chat=1), env.chat("c")
        await cache.push(msgs(chat, [1, 2, 3]))
        assert await cache.recent(chat) == [msg(chat, 3)]
        await cache.push([msg(chat, 2)])
        assert await cache.recent(chat) == [msg(chat, 3)]

    async def test_a_push_keeps_the_per_chat_it_is_given(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push(msgs(chat, range(1, 10)), per_chat=3)
        assert await seqs_of(cache, chat) == [7, 8, 9]
        await cache.push([msg(chat, 10)], per_chat=3)
        assert await seqs_of(cache, chat) == [8, 9, 10]
        await cache.push([msg(chat, 11)])  # the cache's own PER_CHAT again
        assert await seqs_of(cache, chat) == [8, 9, 10, 11]
        await cache.push([msg(chat, 12)], per_chat=2)  # a smaller N trims
        assert await seqs_of(cache, chat) == [11, 12]
        with pytest.raises(InvalidRequest):
            await cache.push([msg(chat, 13)], per_chat=0)

    async def test_empty_push_changes_nothing(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        await cache.push([msg(chat, 1)])
        await cache.push([])
        assert await seqs_of(cache, chat) == [1]

    async def test_message_fields_survive_the_cache(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        full = StoredMessage(
            chat_id=chat,
            seq=1,
            message_id=2**62 + 5,
            sender="bob",
            client_msg_id="cm-1",
            kind="image",
            body="héllo ✓",
            ts=1_750_000_000_123,
            attachment=Attachment("https://x.invalid/a.png", "a.png", 1234, "image/png"),
            encrypted=True,
            sender_device="phone",
        )
        await cache.push([full])
        assert await cache.recent(chat) == [full]

    async def test_aclose_is_idempotent_and_later_calls_raise(self, env: CacheEnv) -> None:
        cache, chat = await env.open(), env.chat("c")
        async with cache as entered:
            assert entered is cache
        await cache.aclose()
        with pytest.raises(ChatcoreClosed):
            await cache.push([msg(chat, 1)])
        with pytest.raises(ChatcoreClosed):
            await cache.recent(chat)
