"""Bounded memory on the embedded server (issue 11): hot cache, memory log, chat creation."""

from __future__ import annotations

import pytest

from chatcore.cache import MemoryHotCache
from chatcore.errors import InvalidRequest, RateLimited
from chatcore.log import MemoryLog, OutRecord
from chatcore.model import StoredMessage
from chatcore.node import ChatNode, NodeOptions

pytestmark = pytest.mark.anyio


def msg(chat_id: str, seq: int) -> StoredMessage:
    return StoredMessage(chat_id, seq, seq, "u", f"c{seq}", "text", "x", 0)


# -- the hot cache --------------------------------------------------------------------


async def test_the_memory_cache_keeps_a_bounded_number_of_chats_by_default() -> None:
    assert MemoryHotCache().max_chats == 10_000
    async with MemoryHotCache(per_chat=1) as cache:
        await cache.push([msg(f"c{i}", 1) for i in range(10_001)])
        assert await cache.recent("c0") == []
        assert [m.seq for m in await cache.recent("c10000")] == [1]


async def test_the_memory_cache_drops_the_least_recently_used_chat() -> None:
    async with MemoryHotCache(per_chat=3, max_chats=2) as cache:
        await cache.push([msg("a", 1), msg("b", 1)])
        assert await cache.recent("a")  # read: now b is the least recently used
        await cache.push([msg("c", 1)])
        assert await cache.recent("b") == []
        assert await cache.recent("a") and await cache.recent("c")
        cache.limit_chats(1)
        assert await cache.recent("a") == []
        with pytest.raises(InvalidRequest):
            cache.limit_chats(0)


async def test_the_node_bounds_its_memory_cache_and_reads_the_rest_from_the_store() -> None:
    assert NodeOptions().hot_cache_max_chats == 10_000
    with pytest.raises(InvalidRequest):
        ChatNode.in_memory(hot_cache_max_chats=0)
    async with ChatNode.in_memory(partitions=2, hot_cache_max_chats=2) as node:
        cache = node.backends.cache
        assert isinstance(cache, MemoryHotCache) and cache.max_chats == 2
        chats = [
            await node.create_chat("alice", kind="group", members=["bob"], title=f"{i}")
            for i in range(3)
        ]
        for chat in chats:
            await node.send("alice", chat.chat_id, client_msg_id="m", body="hi")
        await node.settled()
        assert await cache.recent(chats[0].chat_id) == []
        page = await node.history("bob", chats[0].chat_id)
        assert [m.body for m in page.messages] == ["hi"]


# -- the memory log ---------------------------------------------------------------------


async def test_the_memory_log_forgets_records_every_group_has_passed() -> None:
    async with MemoryLog() as log:
        await log.create_topic("t", partitions=2)
        await log.append([OutRecord("t", f"k{i}", b"x" * 100) for i in range(40)])
        assert log.retained("t") == 40
        async with log.consumer("t", group="a") as a, log.consumer("t", group="b") as b:
            got_a = (await a.poll(max_records=100)).records
            got_b = (await b.poll(max_records=100)).records
            assert len(got_a) == len(got_b) == 40
            ends = await log.end_offsets("t")
            await a.commit(ends)
            assert log.retained("t") == 40  # b has joined and not passed them yet
            await b.commit({0: 1})
            assert log.retained("t") == 40 - 1
            await b.commit(ends)
            assert log.retained("t") == 0
        await log.append([OutRecord("t", "k0", b"late")])
        assert log.retained("t") == 1
        async with log.consumer("t", group="a") as again:
            (late,) = (await again.poll()).records
        assert late.value == b"late" and late.offset == ends[late.partition]
        assert await log.end_offsets("t") != ends  # offsets keep counting


async def test_the_memory_log_keeps_records_for_a_group_expected_before_it_starts() -> None:
    async with MemoryLog() as log:
        await log.create_topic("t", partitions=1)
        log.expect_group("t", "later")
        await log.append([OutRecord("t", "k", b"x") for _ in range(3)])
        async with log.consumer("t", group="now") as now:
            await now.poll()
            await now.commit({0: 3})
        assert log.retained("t") == 3
        async with log.consumer("t", group="later") as later:
            assert len((await later.poll()).records) == 3


async def test_a_memory_node_holds_no_log_records_once_settled() -> None:
    async with ChatNode.in_memory(partitions=2) as node:
        log = node.backends.log
        assert isinstance(log, MemoryLog)
        chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
        for i in range(20):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x" * 1000)
        await node.receipt("bob", chat.chat_id, "read", 0)
        await node.settled()
        topics = node.topics
        for topic in (topics.submitted, topics.messages, topics.receipts):
            assert log.retained(topic) == 0, topic
        page = await node.history("bob", chat.chat_id, limit=20)
        assert len(page.messages) == 20  # the store keeps the history


# -- chat creation ------------------------------------------------------------------------


async def test_chat_creation_is_rate_limited_per_user() -> None:
    options = NodeOptions()
    assert (options.chat_create_burst, options.chat_create_rate_per_s) == (20, 0.5)
    async with ChatNode.in_memory(partitions=2, chat_create_burst=3) as node:
        for i in range(3):
            await node.create_chat("mallory", kind="group", members=["a", "b"], title=f"{i}")
        with pytest.raises(RateLimited) as refused:
            await node.create_chat("mallory", kind="group", members=["a", "b"], title="x")
        assert refused.value.retry_after_ms > 0
        assert len(await node.backends.membership.chats_of("mallory")) == 3  # nothing stored
        await node.create_chat("alice", kind="group", members=["a"], title="t")  # per user
    with pytest.raises(InvalidRequest):
        ChatNode.in_memory(chat_create_burst=0)
