"""Concurrent role changes of one group on the real Cassandra: none is lost.

Each scenario lets the competing changes all read the group before any writes (a
barrier in front of the store's first reads), the interleaving that loses an update
when roles are a plain last-write-wins value. ``LastWriteWins`` plays the old store
(it drops ``expected``), to show the scenario catches the lost update.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import pytest

from chatcore.bus.memory import MemoryGatewayBus
from chatcore.errors import NotMember
from chatcore.ids import SnowflakeGenerator
from chatcore.model import ChatInfo, ChatRoles
from chatcore.pipeline.chats import ChatDirectory
from chatcore.registry.memory import MemoryConnectionRegistry
from chatcore.store._base import MembershipStore
from chatcore.store.cassandra import CassandraStores
from tests.services import CASSANDRA_HOSTS, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def stores() -> AsyncIterator[CassandraStores]:
    require("cassandra")
    keyspace = unique("it_roles_")
    async with await CassandraStores.connect(CASSANDRA_HOSTS.split(","), keyspace) as opened:
        try:
            yield opened
        finally:
            drop = f"DROP KEYSPACE IF EXISTS {keyspace}"
            await anyio.to_thread.run_sync(opened.session.execute, drop)


class ReadTogether:
    """A MembershipStore whose first ``readers`` ``get_chat`` calls wait for each other."""

    def __init__(self, store: MembershipStore, readers: int) -> None:
        self._store = store
        self._waiting = readers
        self._all_read = anyio.Event()

    async def get_chat(self, chat_id: str) -> ChatInfo | None:
        chat = await self._store.get_chat(chat_id)
        if self._waiting > 0:
            self._waiting -= 1
            if self._waiting == 0:
                self._all_read.set()
            await self._all_read.wait()
        return chat

    async def set_roles(
        self, chat_id: str, roles: ChatRoles, *, expected: ChatRoles | None = None
    ) -> ChatInfo:
        return await self._store.set_roles(chat_id, roles, expected=expected)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class LastWriteWins(ReadTogether):
    """The store as it was: ``set_roles`` ignores what the change was planned on."""

    async def set_roles(
        self, chat_id: str, roles: ChatRoles, *, expected: ChatRoles | None = None
    ) -> ChatInfo:
        return await super().set_roles(chat_id, roles)


async def group(stores: CassandraStores, members: Sequence[str], admins: Sequence[str]) -> str:
    chat_id = unique("g-")
    roles = ChatRoles(members[0], tuple(admins))
    await stores.membership.create_chat(ChatInfo(chat_id, "group", tuple(members), "t", 1, roles))
    return chat_id


def directory(store: Any) -> ChatDirectory:
    return ChatDirectory(
        store, SnowflakeGenerator(5), MemoryConnectionRegistry(), MemoryGatewayBus()
    )


async def promote_at_once(stores: CassandraStores, store: ReadTogether, chat_id: str) -> ChatInfo:
    """alice promotes carol while bob promotes dave, both from the same reading."""
    chats = directory(store)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: chats.update_members("alice", chat_id, promote=["carol"]))
        tg.start_soon(lambda: chats.update_members("bob", chat_id, promote=["dave"]))
    stored = await stores.membership.get_chat(chat_id)
    assert stored is not None
    return stored


async def test_two_admins_promoting_at_once_both_count(stores: CassandraStores) -> None:
    members = ("alice", "bob", "carol", "dave")
    chat_id = await group(stores, members, ("alice", "bob"))
    stored = await promote_at_once(stores, ReadTogether(stores.membership, 2), chat_id)
    assert set(stored.admins()) == set(members)


async def test_the_scenario_loses_a_promotion_under_last_write_wins(
    stores: CassandraStores,
) -> None:
    """The test above can fail: without the compare-and-set one promotion is lost."""
    members = ("alice", "bob", "carol", "dave")
    chat_id = await group(stores, members, ("alice", "bob"))
    stored = await promote_at_once(stores, LastWriteWins(stores.membership, 2), chat_id)
    assert len(set(stored.admins()) & {"carol", "dave"}) == 1


async def test_the_last_admin_leaving_while_promoting_keeps_a_serial_outcome(
    stores: CassandraStores,
) -> None:
    """alice, the only admin, leaves from one device while promoting dave from another:
    either the promotion happens first (dave is then an admin after she leaves) or she
    has left first (then the promotion is refused); never a promotion reported done and
    lost."""
    chat_id = await group(stores, ("alice", "bob", "carol", "dave"), ("alice",))
    chats = directory(ReadTogether(stores.membership, 2))
    promoted: list[bool] = []

    async def promote() -> None:
        try:
            await chats.update_members("alice", chat_id, promote=["dave"])
            promoted.append(True)
        except NotMember:
            promoted.append(False)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: chats.update_members("alice", chat_id, remove=["alice"]))
        tg.start_soon(promote)
    stored = await stores.membership.get_chat(chat_id)
    assert stored is not None
    assert stored.members == ("bob", "carol", "dave")
    assert stored.admins() == (("dave",) if promoted == [True] else ("bob",))
