"""The built-in ``MembershipStore`` backends run ``chatcore.testing.MembershipStoreSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore._sqlite import SqliteDatabase
from chatcore.errors import ChatcoreClosed
from chatcore.model import ChatInfo, StoredMessage
from chatcore.store import (
    MembershipStore,
    MemoryMembershipStore,
    SqliteMembershipStore,
    SqliteMessageStore,
    SqliteReceiptStore,
)
from chatcore.store.cassandra import CassandraStores
from chatcore.testing import MembershipStoreSuite


class TestMemory(MembershipStoreSuite):
    @pytest.fixture
    def make_store(self) -> Callable[[], Awaitable[MembershipStore]]:
        async def make() -> MembershipStore:
            return MemoryMembershipStore()

        return make


class TestSqlite(MembershipStoreSuite):
    durable = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[], Awaitable[MembershipStore]]:
        async def make() -> MembershipStore:
            return SqliteMembershipStore(tmp_path / "membership.db")

        return make


@pytest.mark.services
class TestCassandra(MembershipStoreSuite):
    durable = True

    @pytest.fixture
    def make_store(
        self, cassandra_stores: Callable[[], Awaitable[CassandraStores]]
    ) -> Callable[[], Awaitable[MembershipStore]]:
        async def make() -> MembershipStore:
            return (await cassandra_stores()).membership

        return make


@pytest.mark.anyio
async def test_sqlite_stores_share_one_database(tmp_path: Path) -> None:
    """SQLite only: the three stores on one shared file; closing them leaves it open."""
    db = SqliteDatabase(tmp_path / "chat.db")
    message = StoredMessage("g", 1, 11, "alice", "k1", "text", "hi", 5)
    async with (
        SqliteMembershipStore(db) as members,
        SqliteMessageStore(db) as messages,
        SqliteReceiptStore(db) as receipts,
    ):
        await members.create_chat(ChatInfo("g", "group", ("alice", "bob"), created_ms=1))
        await messages.append([message])
        await receipts.advance("g", "bob", read_seq=1, now_ms=9)
    async with (
        SqliteMembershipStore(db) as members,
        SqliteMessageStore(db) as messages,
        SqliteReceiptStore(db) as receipts,
    ):
        assert await members.chats_of("bob") == ["g"]
        assert await messages.range("g") == [message]
        assert (await receipts.get("g", "bob")).read_seq == 1
    unclosed = SqliteMessageStore(db)
    await db.aclose()

    with pytest.raises(ChatcoreClosed):
        await unclosed.last_seq("g")
    async with SqliteMessageStore(tmp_path / "chat.db") as owned:
        assert await owned.last_seq("g") == 1
