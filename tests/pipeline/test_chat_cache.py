"""The Router's ChatCache: member lists trusted for a bounded time, local changes at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import anyio
import pytest

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest, NotMember
from chatcore.model import ChatInfo
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.chats import ChatCache
from chatcore.store.memory import MemoryMembershipStore

pytestmark = pytest.mark.anyio


class CountingStore(MemoryMembershipStore):
    """A membership store that counts reads and can hold them until released."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.hold: anyio.Event | None = None
        self.reading = anyio.Event()

    async def get_chat(self, chat_id: str) -> ChatInfo | None:
        self.reads += 1
        found = await super().get_chat(chat_id)
        if self.hold is not None:
            self.reading.set()
            await self.hold.wait()
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def group(store: MemoryMembershipStore, members: Sequence[str]) -> ChatInfo:
    return await store.create_chat(ChatInfo("g-1", "group", tuple(members), "t", 1))


@pytest.fixture(params=["memory", "sqlite"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatNode]:
    if request.param == "memory":
        backends = Backends.in_memory()
    else:
        backends = Backends.embedded(tmp_path / "data")
    # A long TTL: anything these tests see at once comes from local invalidation.
    async with ChatNode(backends, NodeOptions(partitions=2, membership_cache_ttl_s=3600)) as node:
        yield node


async def test_a_member_removed_through_the_chat_service_can_no_longer_send(
    node: ChatNode,
) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob", "carol"], title="t")
    await node.send("bob", chat.chat_id, client_msg_id="b1", body="hi")  # cached now
    await node.receipt("bob", chat.chat_id, "read", 1)
    await node.update_members("alice", chat.chat_id, remove=["bob"])
    with pytest.raises(NotMember):
        await node.send("bob", chat.chat_id, client_msg_id="b2", body="still here?")
    with pytest.raises(NotMember):
        await node.receipt("bob", chat.chat_id, "read", 1)
    with pytest.raises(NotMember):
        await node.history("bob", chat.chat_id)
    await node.send("carol", chat.chat_id, client_msg_id="c1", body="hi")


async def test_a_member_added_elsewhere_can_send_at_once(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
    await node.send("bob", chat.chat_id, client_msg_id="b1", body="hi")  # cached now
    # Another node adds dave: this node's cache is not told.
    await node.backends.membership.update_members(chat.chat_id, add=["dave"])
    await node.send("dave", chat.chat_id, client_msg_id="d1", body="hello")
    with pytest.raises(NotMember):
        await node.send("mallory", chat.chat_id, client_msg_id="m1", body="no")


async def test_a_removal_elsewhere_is_seen_once_the_ttl_has_passed() -> None:
    store, clock = CountingStore(), Clock()
    chat = await group(store, ["alice", "bob"])
    cache = ChatCache(store, ttl_s=1.0, clock=clock)
    assert await cache.member_chat("bob", chat.chat_id) == chat
    await store.update_members(chat.chat_id, remove=["bob"])  # by another process
    clock.now += 0.5
    cached = await cache.member_chat("bob", chat.chat_id)
    assert cached is not None and cached.has_member("bob")  # within the bound
    assert store.reads == 1
    clock.now += 0.5
    fresh = await cache.member_chat("bob", chat.chat_id)
    assert fresh is not None and not fresh.has_member("bob")
    assert store.reads == 2


async def test_local_changes_replace_the_cached_chat() -> None:
    store, clock = CountingStore(), Clock()
    chat = await group(store, ["alice", "bob"])
    cache = ChatCache(store, ttl_s=60.0, clock=clock)
    await cache.get_chat(chat.chat_id)
    updated = await store.update_members(chat.chat_id, remove=["bob"])
    cache.changed(updated)
    assert await cache.get_chat(chat.chat_id) == updated
    cache.forget(chat.chat_id)
    assert await cache.get_chat(chat.chat_id) == updated
    assert store.reads == 2


async def held_reads(
    cache: ChatCache,
    store: CountingStore,
    chat_id: str,
    readers: int,
    while_held: Callable[[], Awaitable[None]],
) -> list[ChatInfo | None]:
    """Run ``readers`` concurrent ``get_chat`` calls; the store holds the first read
    until ``while_held()`` has run. Returns what the readers got."""
    store.hold = anyio.Event()
    results: list[ChatInfo | None] = []

    async def read() -> None:
        results.append(await cache.get_chat(chat_id))

    async with anyio.create_task_group() as tg:
        for _ in range(readers):
            tg.start_soon(read)
        await store.reading.wait()  # the first read has the store's answer in hand
        await while_held()
        store.hold.set()
    return results


async def test_a_read_that_overlaps_a_local_change_is_not_cached() -> None:
    store, clock = CountingStore(), Clock()
    chat = await group(store, ["alice", "bob"])
    cache = ChatCache(store, ttl_s=60.0, clock=clock)
    changes: list[ChatInfo] = []

    async def change() -> None:
        changes.append(await store.update_members(chat.chat_id, remove=["bob"]))
        cache.changed(changes[0])

    results = await held_reads(cache, store, chat.chat_id, 1, change)
    assert results == [chat]  # that caller saw the chat as it was when it asked
    assert await cache.get_chat(chat.chat_id) == changes[0]
    assert store.reads == 1


async def test_concurrent_misses_share_one_read() -> None:
    store, clock = CountingStore(), Clock()
    chat = await group(store, ["alice", "bob"])
    cache = ChatCache(store, ttl_s=60.0, clock=clock)

    async def let_the_others_queue() -> None:
        await anyio.sleep(0.01)  # behind the first read

    results = await held_reads(cache, store, chat.chat_id, 10, let_the_others_queue)
    assert results == [chat] * 10
    assert store.reads == 1


async def test_missing_chats_are_not_cached_and_ttl_zero_reads_every_time() -> None:
    store, clock = CountingStore(), Clock()
    cache = ChatCache(store, ttl_s=60.0, clock=clock)
    assert await cache.get_chat("g-1") is None
    chat = await group(store, ["alice", "bob"])
    assert await cache.get_chat("g-1") == chat
    off = ChatCache(store, ttl_s=0)
    reads = store.reads
    for _ in range(3):
        assert await off.member_chat("alice", "g-1") == chat
    assert store.reads == reads + 3


async def test_the_cache_is_bounded() -> None:
    store, clock = CountingStore(), Clock()
    for i in range(5):
        await store.create_chat(ChatInfo(f"g-{i}", "group", ("alice",), "t", 1))
    cache = ChatCache(store, ttl_s=60.0, max_chats=2, clock=clock)
    for i in range(5):
        await cache.get_chat(f"g-{i}")
    reads = store.reads
    await cache.get_chat("g-4")
    await cache.get_chat("g-3")
    assert store.reads == reads
    await cache.get_chat("g-0")
    assert store.reads == reads + 1


def test_bad_options_are_refused() -> None:
    store = MemoryMembershipStore()
    with pytest.raises(InvalidRequest):
        ChatCache(store, ttl_s=-1)
    with pytest.raises(InvalidRequest):
        ChatCache(store, ttl_s=float("inf"))
    with pytest.raises(InvalidRequest):
        ChatCache(store, max_chats=0)
