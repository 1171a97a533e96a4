"""The example third-party store (examples/dict_store.py) passes chatcore's conformance suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio
import pytest

from chatcore.backends import Backends
from chatcore.model import StoredMessage
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


class WatchedStore(DictMessageStore):
    """Sets ``appended`` once the node's history worker has stored something."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.appended = anyio.Event()

    async def append(self, messages: Sequence[StoredMessage]) -> None:
        await super().append(messages)
        self.appended.set()


@pytest.mark.anyio
async def test_a_node_runs_on_the_example_store(tmp_path: Path) -> None:
    backends = Backends.in_memory()
    backends.messages = store = WatchedStore(tmp_path / "messages.json")
    async with ChatNode(backends) as node:
        chat = await node.create_chat("ann", kind="direct", members=["ann", "bob"])
        await node.send("ann", chat.chat_id, client_msg_id="m1", body="hi")
        with anyio.fail_after(5):
            await store.appended.wait()
        page = await node.history("bob", chat.chat_id)
    assert [m.body for m in page.messages] == ["hi"]
