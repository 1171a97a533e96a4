"""The built-in ``MessageStore`` backends run ``chatcore.testing.MessageStoreSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore.store import MemoryMessageStore, MessageStore, SqliteMessageStore
from chatcore.store.cassandra import CassandraStores
from chatcore.testing import MessageStoreSuite


class TestMemory(MessageStoreSuite):
    @pytest.fixture
    def make_store(self) -> Callable[[], Awaitable[MessageStore]]:
        async def make() -> MessageStore:
            return MemoryMessageStore()

        return make


class TestSqlite(MessageStoreSuite):
    durable = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[], Awaitable[MessageStore]]:
        async def make() -> MessageStore:
            return SqliteMessageStore(tmp_path / "messages.db")

        return make


@pytest.mark.services
class TestCassandra(MessageStoreSuite):
    durable = True

    @pytest.fixture
    def make_store(
        self, cassandra_stores: Callable[[], Awaitable[CassandraStores]]
    ) -> Callable[[], Awaitable[MessageStore]]:
        async def make() -> MessageStore:
            return (await cassandra_stores()).messages

        return make
