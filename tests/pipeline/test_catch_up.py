"""Catch-up when the History stage runs behind Delivery (issue 11).

A member who was offline while messages were delivered must get every message
sequenced before their ``sync``, even when the History stage has not stored them
yet: sync waits (bounded) for it, and says ``overloaded`` rather than answer short.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest, Overloaded
from chatcore.events import MessageEvent
from chatcore.model import ChatInfo, HistoryPage, SyncResult
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.hub import LocalConnection
from tests.pipeline.held import HeldMessageStore

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Backends:
    if request.param == "memory":
        return Backends.in_memory()
    return Backends.embedded(tmp_path / "data")


@pytest.fixture
async def held(backends: Backends) -> HeldMessageStore:
    store = HeldMessageStore(backends.messages)
    backends.messages = store
    return store


async def delivered_live(conn: LocalConnection, n: int) -> list[int]:
    seqs: list[int] = []
    with anyio.fail_after(10):
        while len(seqs) < n:
            event = await conn.receive()
            if isinstance(event, MessageEvent):
                seqs.append(event.message.seq)
    return seqs


async def send_while_history_is_held(
    node: ChatNode, held: HeldMessageStore, *, before: int, after: int
) -> ChatInfo:
    """``before`` messages stored, then ``after`` more delivered live but not stored."""
    chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
    async with node.connect("alice", "phone") as alice:
        for i in range(before):
            await node.send("alice", chat.chat_id, client_msg_id=f"a{i}", body=f"{i}")
        await node.settled()
        held.hold()
        for i in range(before, before + after):
            await node.send("alice", chat.chat_id, client_msg_id=f"a{i}", body=f"{i}")
        # The Delivery stage is ahead: the sender's own device got all of them live.
        assert await delivered_live(alice, before + after) == list(range(1, before + after + 1))
    with anyio.fail_after(10):
        await held.waiting.wait()
    return chat


def assert_complete(result: SyncResult, chat: ChatInfo, *, cursor: int, last: int) -> None:
    (state,) = result.chats
    assert state.last_seq == last
    assert not state.truncated
    assert [m.seq for m in result.messages] == list(range(cursor + 1, last + 1))
    assert all(m.chat_id == chat.chat_id for m in result.messages)


async def test_sync_waits_for_the_history_stage_and_misses_nothing(
    backends: Backends, held: HeldMessageStore
) -> None:
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        chat = await send_while_history_is_held(node, held, before=7, after=3)
        result: list[SyncResult] = []

        async def sync() -> None:
            result.append(await node.sync("bob", {chat.chat_id: 7}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(sync)
            held.release()  # the sync above may already be waiting for it
        assert_complete(result[0], chat, cursor=7, last=10)


async def test_sync_says_overloaded_rather_than_answer_short(
    backends: Backends, held: HeldMessageStore
) -> None:
    options = NodeOptions(partitions=2, history_wait_s=0.2)
    async with ChatNode(backends, options) as node:
        chat = await send_while_history_is_held(node, held, before=7, after=3)
        with pytest.raises(Overloaded) as refused:
            await node.sync("bob", {chat.chat_id: 7})
        assert refused.value.retriable and refused.value.retry_after_ms > 0
        assert refused.value.code == "overloaded"
        assert await node.backends.offline.pending("bob")  # nothing cleared for a refusal
        held.release()
        assert_complete(await node.sync("bob", {chat.chat_id: 7}), chat, cursor=7, last=10)


def test_history_wait_must_be_positive_and_finite() -> None:
    assert NodeOptions().history_wait_s == 5.0
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(InvalidRequest):
            ChatNode.in_memory(history_wait_s=bad)


async def test_a_gap_fill_waits_for_the_history_stage_too(
    backends: Backends, held: HeldMessageStore
) -> None:
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        chat = await send_while_history_is_held(node, held, before=7, after=3)
        pages: list[HistoryPage] = []

        async def ask() -> None:  # bob saw seq 10 live and asks for what came after 7
            pages.append(await node.history("bob", chat.chat_id, after=7))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            held.release()
        assert [m.seq for m in pages[0].messages] == [8, 9, 10]
