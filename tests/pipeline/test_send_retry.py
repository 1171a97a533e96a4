"""``send.retry``: a first send skips the store lookup; a resend finds the first copy."""

from __future__ import annotations

from typing import Any

import pytest

from chatcore.backends import Backends
from chatcore.ids import SnowflakeGenerator
from chatcore.model import StoredMessage
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.router import Router

pytestmark = pytest.mark.anyio


class CountingLookups:
    """A MessageStore that counts ``find_client_msg`` calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lookups = 0

    async def find_client_msg(
        self, chat_id: str, sender: str, client_msg_id: str
    ) -> StoredMessage | None:
        self.lookups += 1
        found: StoredMessage | None = await self.inner.find_client_msg(
            chat_id, sender, client_msg_id
        )
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_first_send_reads_no_history_and_a_resend_finds_the_first_copy() -> None:
    backends = Backends.in_memory()
    counted = CountingLookups(backends.messages)
    async with ChatNode(backends, NodeOptions(partitions=1)) as node:
        chat = (await node.create_chat("alice", kind="direct", members=["bob"])).chat_id
        node.router._messages = counted  # the gateway's view of the store
        first = await node.send("alice", chat, client_msg_id="m1", body="hi", retry=False)
        assert counted.lookups == 0
        await node.settled()
        # the resend reaches another gateway (no memory of the first answer)
        other = Router(
            backends.log,
            backends.membership,
            counted,
            SnowflakeGenerator(77),
        )
        again = await other.send("alice", chat, client_msg_id="m1", body="hi", retry=True)
        assert counted.lookups == 1
        assert again.duplicate and again.message_id == first.message_id
        # unmarked, the other gateway appends a second record; the Sequencer drops it
        await other.send("alice", chat, client_msg_id="m1", body="hi", retry=False)
        await node.settled()
        page = await node.history("alice", chat, limit=10)
        assert [m.message_id for m in page.messages] == [first.message_id]
