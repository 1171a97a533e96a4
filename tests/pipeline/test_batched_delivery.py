"""The DeliveryWorker hands a whole polled batch to the bus in one call, in order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import anyio
import pytest

from chatcore.bus.memory import MemoryGatewayBus
from chatcore.errors import Unavailable
from chatcore.events import Envelope, MessageEvent, decode_envelopes
from chatcore.model import ChatInfo, Connection, StoredMessage
from chatcore.node import ChatNode
from chatcore.offline.memory import MemoryOfflineIndex, MemoryPushNotifier
from chatcore.pipeline.hub import LocalConnection
from chatcore.pipeline.workers import DeliveryWorker
from chatcore.registry.memory import MemoryConnectionRegistry
from chatcore.store.memory import MemoryMembershipStore

pytestmark = pytest.mark.anyio


class CountingBus(MemoryGatewayBus):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.payloads: list[str] = []  # the gateway of each payload published

    async def publish(self, gateway: str, payload: bytes) -> None:
        self.calls += 1
        await super().publish(gateway, payload)

    async def publish_many(self, payloads: Sequence[tuple[str, bytes]]) -> None:
        self.calls += 1
        self.payloads += [gateway for gateway, _ in payloads]
        await super().publish_many(payloads)


def message(chat_id: str, seq: int, sender: str) -> StoredMessage:
    return StoredMessage(
        message_id=seq,
        chat_id=chat_id,
        seq=seq,
        sender=sender,
        client_msg_id=f"{chat_id}-{seq}",
        kind="text",
        body=f"{chat_id}:{seq}",
        ts=1_000 + seq,
    )


async def test_a_batch_reaches_every_connection_of_every_message_in_order() -> None:
    membership = MemoryMembershipStore()
    registry = MemoryConnectionRegistry()
    bus = CountingBus()
    offline = MemoryOfflineIndex()
    chats = [
        ChatInfo("d-1", "direct", ("alice", "bob"), None, 1),
        ChatInfo("g-1", "group", ("alice", "carol", "dave", "erin"), "t", 1),
        ChatInfo("g-2", "group", ("bob", "carol"), "t", 1),
    ]
    for chat in chats:
        await membership.create_chat(chat)
    conns = [
        Connection("alice", "phone", "gw-a", "a1"),
        Connection("alice", "laptop", "gw-b", "a2"),
        Connection("bob", "phone", "gw-a", "b1"),
        Connection("carol", "phone", "gw-b", "c1"),
        Connection("carol", "tablet", "gw-b", "c2"),
        Connection("dave", "phone", "gw-a", "d1"),
    ]  # erin is offline
    for conn in conns:
        await registry.register(conn, ttl_s=60)
    # Interleaved chats, ascending seq per chat, as one poll of a partition gives them.
    batch: list[StoredMessage] = []
    seqs = {chat.chat_id: 0 for chat in chats}
    for i in range(60):
        chat = chats[i % 3] if i % 7 else chats[1]
        seqs[chat.chat_id] += 1
        batch.append(message(chat.chat_id, seqs[chat.chat_id], chat.members[i % 2]))
    batch.append(message("gone", 1, "alice"))  # a chat that does not exist: skipped

    worker = DeliveryWorker(
        None,  # type: ignore[arg-type]  # _handle does not touch the log
        membership,
        registry,
        bus,
        offline,
        MemoryPushNotifier(),
    )
    members = {chat.chat_id: chat.members for chat in chats}
    expected = {
        c.conn_id: [(m.chat_id, m.seq) for m in batch if c.user in members.get(m.chat_id, ())]
        for c in conns
    }
    got: dict[str, list[tuple[str, int]]] = {c.conn_id: [] for c in conns}
    async with bus, bus.subscribe("gw-a") as gw_a, bus.subscribe("gw-b") as gw_b:
        await worker._handle(batch)
        assert bus.calls == 1
        assert sorted(bus.payloads) == ["gw-a", "gw-b"]  # one payload per gateway
        for gateway, payloads in (("gw-a", gw_a), ("gw-b", gw_b)):
            mine = [c.conn_id for c in conns if c.gateway == gateway]
            with anyio.fail_after(5):
                envelopes: list[Envelope] = decode_envelopes(await anext(payloads))
            for envelope in envelopes:
                assert isinstance(envelope.event, MessageEvent)
                m = envelope.event.message
                for conn_id in envelope.conns:
                    assert conn_id in mine
                    got[conn_id].append((m.chat_id, m.seq))
    assert got == expected
    assert all(expected.values())
    assert worker.delivered == 60
    pending = {p.chat_id: (p.first_seq, p.last_seq) for p in await offline.pending("erin")}
    assert pending == {"g-1": (1, seqs["g-1"])}


async def messages(conn: LocalConnection, n: int) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    with anyio.fail_after(5):
        while len(out) < n:
            event = await conn.receive()
            if isinstance(event, MessageEvent):
                out.append((event.message.chat_id, event.message.seq))
    return out


async def test_a_backlog_delivered_in_one_poll_reaches_every_device_in_order() -> None:
    """Messages pile up while no delivery stage runs, then go out in large batches."""
    roles = frozenset({"gateway", "sequencer", "history", "receipts"})
    async with ChatNode.in_memory(partitions=2, roles=roles) as node:
        direct = await node.create_chat("alice", kind="direct", members=["bob"])
        group = await node.create_chat("alice", kind="group", members=["bob", "carol"], title="t")
        async with (
            node.connect("alice", "phone") as alice_phone,
            node.connect("alice", "laptop") as alice_laptop,
            node.connect("bob", "phone") as bob,
            node.connect("carol", "phone") as carol,
        ):
            sent: list[str] = []
            for i in range(90):
                chat = direct if i % 3 else group
                sender = ("alice", "bob", "carol")[i % 3] if chat is group else "bob"
                await node.send(sender, chat.chat_id, client_msg_id=f"m{i}", body="x")
                sent.append(chat.chat_id)
            await node.settled()  # sequenced and stored; no delivery stage runs
            async with anyio.create_task_group() as tg:
                await tg.start(node.delivery_worker.run)
                n_direct, n_group = sent.count(direct.chat_id), sent.count(group.chat_id)
                both = await messages(alice_phone, 90)
                assert both == await messages(alice_laptop, 90)
                assert await messages(bob, 90) == both
                assert [s for c, s in both if c == direct.chat_id] == list(range(1, n_direct + 1))
                assert [s for c, s in both if c == group.chat_id] == list(range(1, n_group + 1))
                assert await messages(carol, n_group) == [(group.chat_id, s) for s in range(1, 31)]
                tg.cancel_scope.cancel()


class FailingStore(MemoryMembershipStore):
    async def get_chats(self, chat_ids: Iterable[str]) -> dict[str, ChatInfo]:
        wanted = list(chat_ids)
        if "broken" in wanted:
            raise Unavailable("store down")
        return await super().get_chats(wanted)


async def test_a_failed_read_fails_the_batch_with_its_own_error() -> None:
    membership = FailingStore()
    await membership.create_chat(ChatInfo("d-1", "direct", ("alice", "bob"), None, 1))
    registry = MemoryConnectionRegistry()
    await registry.register(Connection("bob", "phone", "gw-a", "b1"), ttl_s=60)
    bus = CountingBus()
    worker = DeliveryWorker(
        None,  # type: ignore[arg-type]  # _handle does not touch the log
        membership,
        registry,
        bus,
        MemoryOfflineIndex(),
        MemoryPushNotifier(),
    )
    batch = [message("d-1", 1, "alice"), message("broken", 1, "alice"), message("d-1", 2, "bob")]
    with pytest.raises(Unavailable):  # as it is, so the stage's restart logs say why
        await worker._handle(batch)
    assert bus.calls == 0  # nothing of the batch went out before the failure


class BarrierOffline(MemoryOfflineIndex):
    """Each add waits until ``width`` adds are in flight together."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.in_flight = 0
        self.together = anyio.Event()

    async def add(self, users: Sequence[str], chat_id: str, seq: int) -> None:
        self.in_flight += 1
        if self.in_flight >= self.width:
            self.together.set()
        await self.together.wait()
        await super().add(users, chat_id, seq)


async def test_offline_index_writes_of_a_batch_run_concurrently() -> None:
    membership = MemoryMembershipStore()
    await membership.create_chat(ChatInfo("d-1", "direct", ("alice", "bob"), None, 1))
    offline = BarrierOffline(width=4)
    push = MemoryPushNotifier()
    worker = DeliveryWorker(
        None,  # type: ignore[arg-type]  # _handle does not touch the log
        membership,
        MemoryConnectionRegistry(),
        CountingBus(),
        offline,
        push,
    )
    with anyio.fail_after(5):  # one add at a time waits here forever
        await worker._handle([message("d-1", seq, "alice") for seq in range(1, 9)])
    pending = {p.chat_id: (p.first_seq, p.last_seq) for p in await offline.pending("bob")}
    assert pending == {"d-1": (1, 8)}
