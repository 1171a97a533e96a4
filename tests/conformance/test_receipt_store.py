"""The built-in ``ReceiptStore`` backends run ``chatcore.testing.ReceiptStoreSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore.store import MemoryReceiptStore, ReceiptStore, SqliteReceiptStore
from chatcore.store.cassandra import CassandraStores
from chatcore.testing import ReceiptStoreSuite


class TestMemory(ReceiptStoreSuite):
    @pytest.fixture
    def make_store(self) -> Callable[[], Awaitable[ReceiptStore]]:
        async def make() -> ReceiptStore:
            return MemoryReceiptStore()

        return make


class TestSqlite(ReceiptStoreSuite):
    durable = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[], Awaitable[ReceiptStore]]:
        async def make() -> ReceiptStore:
            return SqliteReceiptStore(tmp_path / "receipts.db")

        return make


@pytest.mark.services
class TestCassandra(ReceiptStoreSuite):
    durable = True

    @pytest.fixture
    def make_store(
        self, cassandra_stores: Callable[[], Awaitable[CassandraStores]]
    ) -> Callable[[], Awaitable[ReceiptStore]]:
        async def make() -> ReceiptStore:
            return (await cassandra_stores()).receipts

        return make
