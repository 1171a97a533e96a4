"""``HotCache`` conformance: every backend in ``BACKENDS`` must pass it unchanged.

To add a backend, add its name to ``BACKENDS`` and a branch to ``_open_cache``: each
cache it opens keeps ``per_chat`` messages per chat and starts empty (a fresh key
prefix on a real service). Chat ids are unique per test.

Besides the port's docstring, this pins how a cache stays contiguous: a seq beyond
a gap restarts the chat's cache at it; the seq right before the oldest is prepended
while there is room; anything older is ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from chatcore.cache import HotCache, MemoryHotCache
from chatcore.cache.redis import RedisHotCache
from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.model import Attachment, StoredMessage
from tests.services import REDIS_URL, require, unique

pytestmark = pytest.mark.anyio

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.services)]
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


@pytest.fixture(params=BACKENDS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[CacheEnv]:
    async with AsyncExitStack() as stack:
        yield _cache_env(request.param, stack)


def _cache_env(name: str, stack: AsyncExitStack) -> CacheEnv:
    if name == "memory":

        async def open_memory(per_chat: int) -> HotCache:
            return await stack.enter_async_context(MemoryHotCache(per_chat=per_chat))

        return CacheEnv(open_memory)
    if name == "redis":
        require("redis")

        async def open_redis(per_chat: int) -> HotCache:
            prefix = unique("test:")
            stack.push_async_callback(_purge, prefix)
            cache = RedisHotCache(REDIS_URL, prefix=prefix, per_chat=per_chat)
            return await stack.enter_async_context(cache)

        return CacheEnv(open_redis)
    raise AssertionError(f"no hot cache backend named {name!r}")


async def _purge(prefix: str) -> None:
    """Delete every key a test left under its prefix."""
    async with Redis.from_url(REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)


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


async def test_unknown_chat_is_empty(env: CacheEnv) -> None:
    cache = await env.open()
    assert await cache.recent(env.chat("nothing")) == []


async def test_recent_returns_what_was_pushed_ascending(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, range(1, 4)))
    await cache.push([msg(chat, 4)])
    assert await cache.recent(chat) == msgs(chat, range(1, 5))


async def test_keeps_the_last_per_chat_messages(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, range(1, 4)))
    await cache.push(msgs(chat, range(4, 10)))
    await cache.push([msg(chat, 10)])
    assert await cache.recent(chat) == msgs(chat, range(10 - PER_CHAT + 1, 11))


async def test_a_batch_is_applied_in_seq_order(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, [1, 2]))
    await cache.push(msgs(chat, [5, 3, 4]))
    assert await seqs_of(cache, chat) == [1, 2, 3, 4, 5]


async def test_a_seq_already_held_is_ignored(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, range(1, 4)))
    await cache.push([msg(chat, 2, "rewritten"), msg(chat, 3, "rewritten")])
    await cache.push([msg(chat, 4, "first"), msg(chat, 4, "second")])
    assert await cache.recent(chat) == [*msgs(chat, range(1, 4)), msg(chat, 4, "first")]


async def test_chats_are_kept_apart(env: CacheEnv) -> None:
    cache, a, b = await env.open(), env.chat("a"), env.chat("b")
    await cache.push([msg(a, 1), msg(b, 1), msg(a, 2), msg(b, 2), msg(b, 3)])
    assert await cache.recent(a) == msgs(a, [1, 2])
    assert await cache.recent(b) == msgs(b, [1, 2, 3])


async def test_a_gap_restarts_the_chat_at_the_newer_message(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, range(1, 11)))
    await cache.push([msg(chat, 13)])
    assert await seqs_of(cache, chat) == [13]
    await cache.push([msg(chat, 14)])
    assert await seqs_of(cache, chat) == [13, 14]


async def test_first_push_may_start_anywhere(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, [40, 41]))
    assert await seqs_of(cache, chat) == [40, 41]


async def test_a_batch_with_a_gap_keeps_the_run_after_it(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, [1, 2, 3, 7, 8]))
    assert await seqs_of(cache, chat) == [7, 8]


async def test_a_batch_continuing_the_run_past_a_gap_keeps_the_newest(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, [1, 2]))
    await cache.push(msgs(chat, [3, 5, 6]))
    assert await seqs_of(cache, chat) == [5, 6]


async def test_the_seq_before_the_oldest_fills_back_while_there_is_room(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, [12, 13]))
    await cache.push([msg(chat, 11)])
    await cache.push(msgs(chat, [10, 9]))
    assert await seqs_of(cache, chat) == [9, 10, 11, 12, 13]
    await cache.push([msg(chat, 8)])
    assert await seqs_of(cache, chat) == [9, 10, 11, 12, 13]


async def test_older_messages_not_adjacent_are_ignored(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, [10, 11]))
    await cache.push([msg(chat, 5)])
    await cache.push([msg(chat, 8)])
    assert await seqs_of(cache, chat) == [10, 11]


async def test_a_late_duplicate_after_trimming_is_ignored(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push(msgs(chat, range(1, 9)))
    await cache.push([msg(chat, 3, "late copy")])
    assert await seqs_of(cache, chat) == [4, 5, 6, 7, 8]


async def test_one_message_per_chat(env: CacheEnv) -> None:
    cache, chat = await env.open(per_chat=1), env.chat("c")
    await cache.push(msgs(chat, [1, 2, 3]))
    assert await cache.recent(chat) == [msg(chat, 3)]
    await cache.push([msg(chat, 2)])
    assert await cache.recent(chat) == [msg(chat, 3)]


async def test_a_push_keeps_the_per_chat_it_is_given(env: CacheEnv) -> None:
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


async def test_empty_push_changes_nothing(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    await cache.push([msg(chat, 1)])
    await cache.push([])
    assert await seqs_of(cache, chat) == [1]


async def test_message_fields_survive_the_cache(env: CacheEnv) -> None:
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


async def test_aclose_is_idempotent_and_later_calls_raise(env: CacheEnv) -> None:
    cache, chat = await env.open(), env.chat("c")
    async with cache as entered:
        assert entered is cache
    await cache.aclose()
    with pytest.raises(ChatcoreClosed):
        await cache.push([msg(chat, 1)])
    with pytest.raises(ChatcoreClosed):
        await cache.recent(chat)


# -- memory backend only ----------------------------------------------------------------


async def test_memory_cache_drops_the_chat_pushed_to_least_recently() -> None:
    async with MemoryHotCache(per_chat=3, max_chats=2) as cache:
        await cache.push([msg("a", 1), msg("b", 1)])
        await cache.push([msg("a", 2)])
        await cache.push([msg("c", 1)])
        assert await seqs_of(cache, "a") == [1, 2]
        assert await cache.recent("b") == []
        assert await seqs_of(cache, "c") == [1]


_batches = st.lists(st.lists(st.integers(1, 12), max_size=5), max_size=25)


@given(_batches, st.integers(1, 6))
def test_memory_cache_matches_the_rule_for_any_pushes(
    batches: list[list[int]], per_chat: int
) -> None:
    async def check() -> None:
        model: list[int] = []
        async with MemoryHotCache(per_chat=per_chat) as cache:
            for batch in batches:
                await cache.push(msgs("c", batch))
                known = set(model) | set(batch)
                window: list[int] = []
                seq = max(known, default=0)
                while seq in known and len(window) < per_chat:
                    window.insert(0, seq)
                    seq -= 1
                model = window
                assert await seqs_of(cache, "c") == model

    anyio.run(check)
