"""ChatNode end to end in one process: what a gateway relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from chatcore.backends import Backends
from chatcore.cache import MemoryHotCache
from chatcore.errors import (
    ChatcoreClosed,
    FrameTooLarge,
    InvalidRequest,
    NotFound,
    NotMember,
    Unauthorized,
)
from chatcore.events import (
    ChatEvent,
    Event,
    MessageEvent,
    PresenceEvent,
    ReceiptEvent,
    TypingEvent,
)
from chatcore.model import Attachment, StoredMessage
from chatcore.node import ChatNode, NodeOptions
from chatcore.offline.memory import MemoryPushNotifier
from chatcore.pipeline.hub import LocalConnection
from chatcore.uploads import Upload

pytestmark = pytest.mark.anyio

E = TypeVar("E", bound=Event)


@pytest.fixture(params=["memory", "sqlite"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatNode]:
    if request.param == "memory":
        backends = Backends.in_memory()
    else:
        backends = Backends.embedded(tmp_path / "data")
    backends.push = MemoryPushNotifier()
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        yield node


async def next_of(conn: LocalConnection, kind: type[E], timeout: float = 5.0) -> E:
    with anyio.fail_after(timeout):
        while True:
            event = await conn.receive()
            if isinstance(event, kind):
                return event


async def messages(conn: LocalConnection, n: int) -> list[int]:
    return [(await next_of(conn, MessageEvent)).message.seq for _ in range(n)]


async def test_every_device_of_every_member_gets_the_message_in_order(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob", "carol"], title="t")
    async with (
        node.connect("alice", "phone") as alice_phone,
        node.connect("alice", "laptop") as alice_laptop,
        node.connect("bob", "phone") as bob,
    ):
        for i in range(20):
            await node.send(
                "alice", chat.chat_id, client_msg_id=f"m{i}", body=f"{i}", device="phone"
            )
        expected = list(range(1, 21))
        assert await messages(bob, 20) == expected
        assert await messages(alice_laptop, 20) == expected
        assert await messages(alice_phone, 20) == expected


async def test_retry_of_a_stored_message_is_answered_the_same(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    first = await node.send("alice", chat.chat_id, client_msg_id="once", body="hi")
    await node.settled()
    again = await node.send("alice", chat.chat_id, client_msg_id="once", body="hi")
    assert again.message_id == first.message_id and again.duplicate
    await node.send("alice", chat.chat_id, client_msg_id="twice", body="next")
    await node.settled()
    page = await node.history("bob", chat.chat_id)
    assert [m.client_msg_id for m in page.messages] == ["once", "twice"]
    assert page.messages[0].message_id == first.message_id


async def test_bad_sends_are_refused_and_change_nothing(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    log = node.backends.log
    before = await log.end_offsets(node.topics.submitted)
    with pytest.raises(NotMember):
        await node.send("mallory", chat.chat_id, client_msg_id="x", body="hi")
    with pytest.raises(NotFound):
        await node.send("alice", "no-such-chat", client_msg_id="x", body="hi")
    with pytest.raises(FrameTooLarge):
        await node.send("alice", chat.chat_id, client_msg_id="x", body="x" * 20_000)
    with pytest.raises(InvalidRequest):
        await node.send("alice", chat.chat_id, client_msg_id="", body="hi")
    with pytest.raises(InvalidRequest):
        await node.send("alice", chat.chat_id, client_msg_id="x", kind="image", body="")
    with pytest.raises(NotMember):
        await node.history("mallory", chat.chat_id)
    with pytest.raises(NotMember):
        await node.receipt("mallory", chat.chat_id, "read", 1)
    assert await log.end_offsets(node.topics.submitted) == before
    assert await log.end_offsets(node.topics.receipts) == {0: 0, 1: 0}


async def test_media_and_encrypted_messages_travel_unchanged(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    blob = "ab" * 32
    await node.backends.uploads.record(
        Upload(blob=blob, user="alice", kind="image", size=1234, mime="image/jpeg", uploaded_ms=1)
    )
    photo = Attachment(url="", name="p.jpg", size=1234, mime="image/jpeg", blob=blob)
    async with node.connect("bob", "phone") as bob:
        await node.send("alice", chat.chat_id, client_msg_id="a", kind="image", attachment=photo)
        await node.send("alice", chat.chat_id, client_msg_id="b", body="b3BhcXVl", encrypted=True)
        first = (await next_of(bob, MessageEvent)).message
        second = (await next_of(bob, MessageEvent)).message
    assert first.attachment == photo and first.kind == "image"
    assert second.encrypted and second.body == "b3BhcXVl"


async def test_chat_rules(node: ChatNode) -> None:
    direct = await node.create_chat("alice", kind="direct", members=["bob"])
    assert (await node.create_chat("bob", kind="direct", members=["alice"])) == direct
    with pytest.raises(InvalidRequest):
        await node.create_chat("alice", kind="direct", members=["bob", "carol"])
    with pytest.raises(InvalidRequest):
        await node.create_chat("alice", kind="group", members=[f"u{i}" for i in range(256)])
    group = await node.create_chat("alice", kind="group", members=[f"u{i}" for i in range(255)])
    assert len(group.members) == 256 and group.members[0] == "alice"
    with pytest.raises(InvalidRequest):
        await node.update_members("alice", group.chat_id, add=["one-too-many"])
    with pytest.raises(InvalidRequest):
        await node.update_members("alice", direct.chat_id, add=["carol"])
    with pytest.raises(NotMember):
        await node.update_members("mallory", group.chat_id, add=["mallory"])
    async with node.connect("u3", "phone") as u3:
        updated = await node.update_members("alice", group.chat_id, remove=["u3"], add=["zed"])
        pushed = await next_of(u3, ChatEvent)  # the removed member hears of it too
    assert "u3" not in updated.members and "zed" in updated.members
    assert pushed.chat == updated
    assert group.chat_id in {s.chat.chat_id for s in await node.chats("zed")}
    assert group.chat_id not in {s.chat.chat_id for s in await node.chats("u3")}
    assert await node.last_seq(group.chat_id) == 0  # nothing sent yet


async def test_receipts_are_watermarks_and_drive_unread(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    async with node.connect("alice", "phone") as alice, node.connect("bob", "phone") as bob:
        for i in range(5):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
        await messages(bob, 5)
        await node.receipt("bob", chat.chat_id, "delivered", 5)
        delivered = await next_of(alice, ReceiptEvent)
        assert (delivered.user, delivered.status, delivered.seq) == ("bob", "delivered", 5)
        await node.receipt("bob", chat.chat_id, "read", 3)
        read = await next_of(alice, ReceiptEvent)
        assert (read.status, read.seq) == ("read", 3)
        await node.receipt("bob", chat.chat_id, "read", 2)  # lower: changes nothing
        await node.receipt("bob", chat.chat_id, "read", 4)
        assert (await next_of(alice, ReceiptEvent)).seq == 4
    (state,) = await node.chats("bob")
    assert (state.last_seq, state.read_seq, state.delivered_seq, state.unread) == (5, 4, 5, 1)


async def test_history_pages_both_ways(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    async with node.connect("bob", "phone") as bob:
        for i in range(30):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body=f"{i + 1}")
        await messages(bob, 30)
    await node.settled()
    latest = await node.history("bob", chat.chat_id, limit=10)
    assert [m.seq for m in latest.messages] == list(range(21, 31)) and latest.has_more
    older = await node.history("bob", chat.chat_id, before=21, limit=15)
    assert [m.seq for m in older.messages] == list(range(6, 21)) and older.has_more
    oldest = await node.history("bob", chat.chat_id, before=6, limit=15)
    assert [m.seq for m in oldest.messages] == list(range(1, 6)) and not oldest.has_more
    newer = await node.history("bob", chat.chat_id, after=25, limit=10)
    assert [m.seq for m in newer.messages] == list(range(26, 31)) and not newer.has_more
    some = await node.history("bob", chat.chat_id, after=0, limit=4)
    assert [m.body for m in some.messages] == ["1", "2", "3", "4"] and some.has_more
    with pytest.raises(InvalidRequest):
        await node.history("bob", chat.chat_id, limit=0)


async def test_offline_member_catches_up_with_sync_and_gets_one_push(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
    push = node.backends.push
    assert isinstance(push, MemoryPushNotifier)
    async with node.connect("alice", "phone") as alice:
        for i in range(12):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body=f"m{i}")
        await messages(alice, 12)
    with anyio.fail_after(10):  # the first goes out at once, the rest after the window
        while sum(n.count for n in push.sent) < 12:
            await anyio.sleep(0.05)
    assert {n.user for n in push.sent} == {"bob"}
    assert len(push.sent) <= 3  # coalesced, not 12 pushes
    assert all(n.senders == ("alice",) for n in push.sent)
    assert await node.backends.offline.pending("bob")
    result = await node.sync("bob", {chat.chat_id: 4})
    assert [m.seq for m in result.messages] == list(range(5, 13))
    (state,) = result.chats
    assert (state.last_seq, state.unread, state.truncated) == (12, 12, False)
    assert await node.backends.offline.pending("bob") == []
    everything = await node.sync("bob")
    assert everything.messages == [] and everything.chats[0].last_seq == 12


async def test_sync_is_bounded_per_chat(tmp_path: Path) -> None:
    async with ChatNode.in_memory(sync_per_chat=5) as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        for i in range(8):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
        await node.settled()
        result = await node.sync("bob", {chat.chat_id: 0, "not-mine": 0})
        assert [m.seq for m in result.messages] == [1, 2, 3, 4, 5]
        assert [s.truncated for s in result.chats] == [True]


class CountingCache(MemoryHotCache):
    """A MemoryHotCache (keeping its default 100) that says when ``wanted`` were pushed."""

    def __init__(self, wanted: int) -> None:
        super().__init__()
        self.wanted, self.pushed, self.done = wanted, 0, anyio.Event()

    async def push(self, messages: Sequence[StoredMessage], *, per_chat: int | None = None) -> None:
        await super().push(messages, per_chat=per_chat)
        self.pushed += len(messages)
        if self.pushed >= self.wanted:
            self.done.set()


async def test_the_hot_cache_keeps_the_last_hot_cache_per_chat_messages() -> None:
    backends = Backends.in_memory()
    backends.cache = cache = CountingCache(wanted=8)
    async with ChatNode(backends, NodeOptions(partitions=2, hot_cache_per_chat=5)) as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        for i in range(8):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
        with anyio.fail_after(5):
            await cache.done.wait()
        assert [m.seq for m in await cache.recent(chat.chat_id)] == [4, 5, 6, 7, 8]
        page = await node.history("bob", chat.chat_id, limit=8)  # the rest from the store
        assert [m.seq for m in page.messages] == list(range(1, 9))


def test_hot_cache_per_chat_defaults_to_100_and_must_be_positive() -> None:
    assert NodeOptions().hot_cache_per_chat == 100
    with pytest.raises(InvalidRequest):
        ChatNode.in_memory(hot_cache_per_chat=0)


async def test_presence_online_offline_and_last_seen(node: ChatNode) -> None:
    await node.create_chat("bob", kind="direct", members=["alice"])  # bob took part
    with pytest.raises(Unauthorized):
        await node.presence("alice", ["stranger"])
    async with node.connect("alice", "phone") as alice:
        node.hub.watch_presence(alice, ["bob"])
        async with node.connect("bob", "phone"), node.connect("bob", "laptop") as laptop:
            online = await next_of(alice, PresenceEvent)
            assert online.states[0].user == "bob" and online.states[0].online
            (state,) = await node.presence("alice", ["bob"])
            assert state.online
            await laptop.aclose()
            assert (await node.presence("alice", ["bob"]))[0].online  # the phone is still on
        offline = await next_of(alice, PresenceEvent)
        assert not offline.states[0].online and offline.states[0].last_seen is not None
        (state,) = await node.presence("alice", ["bob"])
        assert not state.online and state.last_seen == offline.states[0].last_seen


async def test_watched_presence_is_pushed_until_unwatched(node: ChatNode) -> None:
    await node.create_chat("bob", kind="direct", members=["alice"])  # bob took part
    async with node.connect("alice", "phone") as alice:
        with pytest.raises(Unauthorized):
            await node.watch_presence(alice, ["bob", "stranger"])
        assert not node.hub.presence.watched_by(alice)  # a refused watch registers nothing
        (state,) = await node.watch_presence(alice, ["bob"])
        assert state.user == "bob" and not state.online
        assert node.hub.presence.watched_by(alice) == {"bob"}
        async with node.connect("bob", "phone"):
            assert (await next_of(alice, PresenceEvent)).states[0].online
        assert not (await next_of(alice, PresenceEvent)).states[0].online
        node.unwatch_presence(alice, ["bob"])
        assert not node.hub.presence.watched_by(alice)


async def test_typing_reaches_other_members_only(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    async with node.connect("alice", "phone") as alice, node.connect("bob", "phone") as bob:
        await node.typing("alice", chat.chat_id)
        event = await next_of(bob, TypingEvent)
        assert (event.chat_id, event.user) == (chat.chat_id, "alice")
        assert alice.receive_nowait() is None


async def test_slow_consumer_is_closed_and_others_keep_receiving() -> None:
    async with ChatNode.in_memory(connection_queue=5) as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        async with node.connect("bob", "slow") as slow, node.connect("bob", "fast") as fast:
            received: list[int] = []

            async def read_fast() -> None:
                while len(received) < 20:
                    event = await fast.receive()
                    if isinstance(event, MessageEvent):
                        received.append(event.message.seq)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read_fast)
                for i in range(20):
                    await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
            assert received == list(range(1, 21))
            assert slow.close_reason == "slow_consumer"
            with pytest.raises(ChatcoreClosed):  # noqa: PT012 (drain, then the close)
                while True:
                    await slow.receive()


async def test_sqlite_node_keeps_chats_history_and_unread_across_restarts(tmp_path: Path) -> None:
    async with ChatNode.embedded(tmp_path / "d") as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        for i in range(3):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
        await node.receipt("bob", chat.chat_id, "read", 1)
        await node.settled()
    async with ChatNode.embedded(tmp_path / "d") as node:
        (state,) = await node.chats("bob")  # stored before the restart: nothing to wait for
        assert state.last_seq == 3
        assert (state.chat.chat_id, state.read_seq, state.unread) == (chat.chat_id, 1, 2)
        await node.send("alice", chat.chat_id, client_msg_id="m3", body="x")
        await node.send("alice", chat.chat_id, client_msg_id="m0", body="x")  # an old retry
        await node.settled()
        page = await node.history("bob", chat.chat_id)
        assert [m.client_msg_id for m in page.messages] == ["m0", "m1", "m2", "m3"]


async def test_node_refuses_use_when_not_running() -> None:
    node = ChatNode.in_memory()
    with pytest.raises(ChatcoreClosed):
        await node.send("a", "c", client_msg_id="x", body="y")


async def test_rate_limit_hook_refuses_and_appends_nothing() -> None:
    from chatcore.errors import RateLimited
    from chatcore.ratelimit import RateLimiter

    now = [0.0]
    hook = RateLimiter(rate_per_s=1, burst=2).hook(clock=lambda: now[0])
    async with ChatNode.in_memory(rate_limit=hook) as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        await node.send("alice", chat.chat_id, client_msg_id="1", body="x")
        await node.send("alice", chat.chat_id, client_msg_id="2", body="x")
        with pytest.raises(RateLimited) as refused:
            await node.send("alice", chat.chat_id, client_msg_id="3", body="x")
        assert refused.value.retry_after_ms == 1000
        await node.send("bob", chat.chat_id, client_msg_id="b", body="x")  # bob has his own
        ends = await node.backends.log.end_offsets(node.topics.submitted)
        assert sum(ends.values()) == 3
        now[0] = 1.0
        await node.send("alice", chat.chat_id, client_msg_id="3", body="x")


async def test_an_immediate_retry_is_answered_the_same_and_stored_once(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    first = await node.send("alice", chat.chat_id, client_msg_id="r", body="hi")
    again = await node.send("alice", chat.chat_id, client_msg_id="r", body="hi")
    assert again.message_id == first.message_id and again.duplicate
    await node.send("alice", chat.chat_id, client_msg_id="s", body="next")
    await node.settled()
    page = await node.history("alice", chat.chat_id)
    assert [m.client_msg_id for m in page.messages] == ["r", "s"]
    assert page.messages[0].message_id == first.message_id


async def test_the_sender_has_read_what_they_sent(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
    for i in range(3):
        await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
    await node.send("bob", chat.chat_id, client_msg_id="b", body="x")
    await node.settled()
    (alice,) = await node.chats("alice")
    (bob,) = await node.chats("bob")
    assert alice.last_seq == bob.last_seq == 4
    assert (alice.read_seq, alice.unread) == (3, 1)
    assert (bob.read_seq, bob.unread) == (4, 0)


async def test_receive_many_returns_each_burst_in_order_then_the_close() -> None:
    async with ChatNode.in_memory() as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        async with node.connect("bob", "phone") as bob:
            seqs: list[int] = []
            bursts = 0
            for i in range(30):
                await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
            with anyio.fail_after(5):
                while len(seqs) < 30:
                    events = await bob.receive_many()
                    assert events, "receive_many waits rather than return nothing"
                    bursts += 1
                    seqs += [e.message.seq for e in events if isinstance(e, MessageEvent)]
            assert seqs == list(range(1, 31))
            assert bob.receive_nowait() is None
        with pytest.raises(ChatcoreClosed):
            await bob.receive_many()
