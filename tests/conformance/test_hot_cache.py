"""The built-in ``HotCache`` backends run ``chatcore.testing.HotCacheSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.cache import HotCache, MemoryHotCache
from chatcore.cache.redis import RedisHotCache
from chatcore.model import StoredMessage
from chatcore.testing import HotCacheSuite


class TestMemory(HotCacheSuite):
    @pytest.fixture
    def make_cache(self) -> Callable[[int], Awaitable[HotCache]]:
        async def make(per_chat: int) -> HotCache:
            return MemoryHotCache(per_chat=per_chat)

        return make


@pytest.mark.services
class TestRedis(HotCacheSuite):
    @pytest.fixture
    def make_cache(
        self, redis_url: str, redis_prefix: Callable[[], str]
    ) -> Callable[[int], Awaitable[HotCache]]:
        async def make(per_chat: int) -> HotCache:
            return RedisHotCache(redis_url, prefix=redis_prefix(), per_chat=per_chat)

        return make


# -- memory backend only ----------------------------------------------------------------


def msg(chat_id: str, seq: int) -> StoredMessage:
    return StoredMessage(chat_id, seq, 1_000_000 + seq, "alice", f"c{seq}", "text", "", seq)


def msgs(chat_id: str, seqs: list[int]) -> list[StoredMessage]:
    return [msg(chat_id, s) for s in seqs]


async def seqs_of(cache: HotCache, chat_id: str) -> list[int]:
    return [m.seq for m in await cache.recent(chat_id)]


_batches = st.lists(st.lists(st.integers(1, 12), max_size=5), max_size=25)


@pytest.mark.anyio
async def test_memory_cache_drops_the_chat_pushed_to_least_recently() -> None:
    async with MemoryHotCache(per_chat=3, max_chats=2) as cache:
        await cache.push([msg("a", 1), msg("b", 1)])
        await cache.push([msg("a", 2)])
        await cache.push([msg("c", 1)])
        assert await seqs_of(cache, "a") == [1, 2]
        assert await cache.recent("b") == []
        assert await seqs_of(cache, "c") == [1]


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
