"""The example third-party store (examples/dict_store.py) passes chatcore's conformance suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore.backends import Backends
from chatcore.node import ChatNode
from chatcore.store import MessageStore
from chatcore.testing import MessageStoreSuite
from examples.dict_store import DictMessageStore


class TestDictStoreInMemory(MessageStoreSuite):
    @pytest.fixture
    def make_store(self) -> Callable[[], Awaitable[MessageStore]]:
        async def make() -> MessageStore:
            return DictMessageStore()

        return make


class TestDictStoreInAFile(MessageStoreSuite):
    durable = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[], Awaitable[MessageStore]]:
        async def make() -> MessageStore:
            return DictMessageStore(tmp_path / "messages.json")

        return make


@pytest.mark.anyio
async def test_a_node_runs_on_the_example_store(tmp_path: Path) -> None:
    backends = Backends.in_memory()
    backends.messages = DictMessageStore(tmp_path / "messages.json")
    async with ChatNode(backends) as node:
        chat = await node.create_chat("ann", kind="direct", members=["ann", "bob"])
        await node.send("ann", chat.chat_id, client_msg_id="m1", body="hi")
        await node.settled()
        page = await node.history("bob", chat.chat_id)
    assert [m.body for m in page.messages] == ["hi"]
    async with DictMessageStore(tmp_path / "messages.json") as reopened:
        assert [m.body for m in await reopened.range(chat.chat_id)] == ["hi"]
