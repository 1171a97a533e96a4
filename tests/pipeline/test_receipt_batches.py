"""Receipts reach the store in batches: one ``advance_many`` per polled batch, no
read and write per receipt (issue 13)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from chatcore.backends import Backends
from chatcore.model import Watermarks
from chatcore.node import ChatNode, NodeOptions
from chatcore.store.memory import MemoryReceiptStore

pytestmark = pytest.mark.anyio


class CountingReceipts(MemoryReceiptStore):
    """The memory store, counting the calls of each method."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.batch_sizes: list[int] = []

    async def advance(self, chat_id: str, user: str, **kwargs: Any) -> Watermarks:
        self.calls["advance"] += 1
        return await super().advance(chat_id, user, **kwargs)

    async def advance_many(self, targets: Sequence[Watermarks]) -> list[Watermarks | None]:
        self.calls["advance_many"] += 1
        self.batch_sizes.append(len(targets))
        return await super().advance_many(targets)

    async def get(self, chat_id: str, user: str) -> Watermarks:
        self.calls["get"] += 1
        return await super().get(chat_id, user)


async def test_receipts_and_own_reads_are_advanced_in_batches() -> None:
    backends = Backends.in_memory()
    receipts = backends.receipts = CountingReceipts()
    members = [f"u{i}" for i in range(20)]
    async with ChatNode(backends, NodeOptions(partitions=1)) as node:
        chat = await node.create_chat("alice", kind="group", members=members, title="t")
        for i in range(5):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body=str(i))
        await node.settled()
        receipts.calls.clear()
        receipts.batch_sizes.clear()
        for user in members:
            await node.receipt(user, chat.chat_id, "delivered", 5)
            await node.receipt(user, chat.chat_id, "read", 3)
        await node.settled()

        assert receipts.calls["get"] == 0  # no read before each write
        assert receipts.calls["advance"] == 0
        assert sum(receipts.batch_sizes) <= 2 * len(members)
        assert receipts.calls["advance_many"] <= len(receipts.batch_sizes)
        for user in members:
            marks = await node.backends.receipts.get(chat.chat_id, user)
            assert (marks.delivered_seq, marks.read_seq) == (5, 3)
        state = await node.chats("alice")
        assert state[0].read_seq == 5  # the sender's own read, from the History stage
