"""Receipts are capped at the chat's last seq (issue 11)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest
from chatcore.node import ChatNode, NodeOptions
from tests.pipeline.held import HeldMessageStore
from tests.pipeline.test_catch_up import send_while_history_is_held

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Backends:
    if request.param == "memory":
        return Backends.in_memory()
    return Backends.embedded(tmp_path / "data")


async def test_a_receipt_beyond_the_last_seq_is_refused_and_stores_nothing(
    backends: Backends,
) -> None:
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
        for i in range(3):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body=f"{i}")
        await node.settled()
        receipts = node.topics.receipts
        before = await node.backends.log.end_offsets(receipts)
        for status in ("delivered", "read"):
            for seq in (9007199254740993, 4):
                with pytest.raises(InvalidRequest, match="last"):
                    await node.receipt("bob", chat.chat_id, status, seq)
        empty = await node.create_chat("carol", kind="direct", members=["bob"])
        with pytest.raises(InvalidRequest):
            await node.receipt("bob", empty.chat_id, "read", 1)
        assert await node.backends.log.end_offsets(receipts) == before
        await node.receipt("bob", empty.chat_id, "read", 0)  # nothing read: allowed
        await node.receipt("bob", chat.chat_id, "read", 3)
        await node.settled()
        marks = await node.backends.receipts.get(chat.chat_id, "bob")
        assert (marks.delivered_seq, marks.read_seq) == (3, 3)


async def test_a_receipt_for_a_message_delivered_before_it_was_stored_is_taken(
    backends: Backends,
) -> None:
    held = HeldMessageStore(backends.messages)
    backends.messages = held
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        chat = await send_while_history_is_held(node, held, before=1, after=2)

        async with anyio.create_task_group() as tg:
            tg.start_soon(node.receipt, "bob", chat.chat_id, "read", 3)
            held.release()  # the receipt may already be waiting for it
        await node.settled()
        assert (await node.backends.receipts.get(chat.chat_id, "bob")).read_seq == 3
