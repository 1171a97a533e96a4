"""Cassandra stores against a real server: buckets, long ranges, TTLs, concurrency, repairs.

The port-level behaviour is in tests/conformance; these tests check what is
Cassandra-specific: where rows land, that ranges walk buckets, that the
order-free write rules hold between two connections (two processes), and that
an interrupted write is repaired by doing it again. One keyspace for the module
(bucket size 10, page size 7, so small data spans buckets and pages); every test
uses its own chat ids.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from chatcore.errors import InvalidRequest
from chatcore.model import ChatInfo, StoredMessage
from chatcore.store.cassandra import CassandraStores
from tests.services import CASSANDRA_HOSTS, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]

HOSTS = CASSANDRA_HOSTS.split(",")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def stores() -> AsyncIterator[CassandraStores]:
    require("cassandra")
    keyspace = unique("it_stores_")
    async with await CassandraStores.connect(
        HOSTS, keyspace, bucket_size=10, fetch_size=7
    ) as opened:
        try:
            yield opened
        finally:
            await cql(opened, f"DROP KEYSPACE IF EXISTS {keyspace}")


@pytest.fixture
async def other(stores: CassandraStores) -> AsyncIterator[CassandraStores]:
    """A second connection to the same keyspace, as another process would have."""
    async with await CassandraStores.connect(
        HOSTS, stores.schema.keyspace, create_schema=False
    ) as opened:
        yield opened


async def cql(stores: CassandraStores, query: str, params: Iterable[object] = ()) -> list[Any]:
    """Run raw CQL on the stores' session (in a worker thread); the rows as dicts."""
    session = stores.session
    return await anyio.to_thread.run_sync(lambda: list(session.execute(query, tuple(params))))


def msg(
    chat_id: str, seq: int, *, body: str | None = None, client_msg_id: str = ""
) -> StoredMessage:
    return StoredMessage(
        chat_id=chat_id,
        seq=seq,
        message_id=10_000 + seq,
        sender="alice",
        client_msg_id=client_msg_id or f"k-{seq}",
        kind="text",
        body=f"m{seq}" if body is None else body,
        ts=1_750_000_000_000 + seq,
    )


def seqs(messages: list[StoredMessage]) -> list[int]:
    return [m.seq for m in messages]


EDGES = [1, 9, 10, 11, 19, 20, 21, 29, 30]


async def test_messages_land_in_the_bucket_of_their_seq(stores: CassandraStores) -> None:
    chat = unique("chat-")
    await stores.messages.append([msg(chat, s) for s in EDGES])
    ks = stores.schema.keyspace

    by_bucket = {}
    for bucket in range(5):
        rows = await cql(
            stores, f"SELECT seq FROM {ks}.messages WHERE chat_id=%s AND bucket=%s", (chat, bucket)
        )
        by_bucket[bucket] = [row["seq"] for row in rows]
    index = await cql(stores, f"SELECT bucket FROM {ks}.chat_buckets WHERE chat_id=%s", (chat,))

    assert by_bucket == {0: [1, 9], 1: [10, 11, 19], 2: [20, 21, 29], 3: [30], 4: []}
    assert [row["bucket"] for row in index] == [3, 2, 1, 0]


async def test_ranges_at_bucket_edges(stores: CassandraStores) -> None:
    chat = unique("chat-")
    await stores.messages.append([msg(chat, s) for s in reversed(EDGES)])
    messages = stores.messages

    assert seqs(await messages.range(chat, after=9, limit=2)) == [10, 11]
    assert seqs(await messages.range(chat, after=10, limit=2)) == [11, 19]
    assert seqs(await messages.range(chat, before=10, limit=5)) == [1, 9]
    assert seqs(await messages.range(chat, before=20, limit=1)) == [19]
    assert seqs(await messages.range(chat, before=21, limit=3)) == [11, 19, 20]
    assert seqs(await messages.range(chat, after=10, before=20)) == [11, 19]
    assert seqs(await messages.range(chat, after=9, before=30, limit=4)) == [10, 11, 19, 20]
    assert seqs(await messages.range(chat, after=29)) == [30]
    assert seqs(await messages.range(chat, limit=4)) == [20, 21, 29, 30]
    assert await messages.last_seq(chat) == 30


async def test_long_ranges_walk_many_buckets_and_pages(stores: CassandraStores) -> None:
    chat = unique("chat-")
    order = list(range(1, 1001))
    random.Random(7).shuffle(order)
    for start in range(0, 1000, 250):
        await stores.messages.append([msg(chat, s) for s in order[start : start + 250]])
    messages = stores.messages

    assert seqs(await messages.range(chat, limit=500)) == list(range(501, 1001))
    assert seqs(await messages.range(chat, after=0, limit=1000)) == list(range(1, 1001))
    assert seqs(await messages.range(chat, after=95, before=505, limit=1000)) == list(
        range(96, 505)
    )
    assert seqs(await messages.range(chat, before=505, limit=123)) == list(range(382, 505))
    forward: list[int] = []
    cursor = 0
    while page := await messages.range(chat, after=cursor, limit=37):
        forward += seqs(page)
        cursor = page[-1].seq
    backward: list[int] = []
    cursor = 1001
    while page := await messages.range(chat, before=cursor, limit=37):
        backward = seqs(page) + backward
        cursor = page[0].seq
    assert forward == backward == list(range(1, 1001))
    assert await messages.last_seq(chat) == 1000


async def test_empty_buckets_between_messages_are_skipped(stores: CassandraStores) -> None:
    chat = unique("chat-")
    far = 10**12  # 10**11 empty buckets lie between: only the bucket index gets over them
    await stores.messages.append([msg(chat, s) for s in [1, 2, far, far + 5]])
    messages = stores.messages

    assert seqs(await messages.range(chat, before=far, limit=10)) == [1, 2]
    assert seqs(await messages.range(chat, after=2, limit=1)) == [far]
    assert seqs(await messages.range(chat, after=0, limit=10)) == [1, 2, far, far + 5]
    assert seqs(await messages.range(chat, after=2, before=far + 5)) == [far]
    assert await messages.last_seq(chat) == far + 5


async def test_an_indexed_bucket_without_messages_is_harmless(stores: CassandraStores) -> None:
    """A writer that died between indexing a bucket and writing into it leaves this."""
    chat = unique("chat-")
    await stores.messages.append([msg(chat, s) for s in range(1, 26)])
    ks = stores.schema.keyspace
    for bucket in (7, 9):
        await cql(
            stores,
            f"INSERT INTO {ks}.chat_buckets (chat_id, bucket) VALUES (%s, %s)",
            (chat, bucket),
        )

    assert await stores.messages.last_seq(chat) == 25
    assert seqs(await stores.messages.range(chat, limit=30)) == list(range(1, 26))
    assert await stores.messages.range(chat, after=25) == []


async def test_big_messages_fill_one_partition(stores: CassandraStores) -> None:
    chat = unique("chat-")
    big = [msg(chat, s, body=f"{s}:" + "x" * 60_000) for s in range(10, 20)]  # ~600 kB, 1 bucket

    await stores.messages.append(big)

    assert await stores.messages.range(chat) == big


async def test_first_write_wins_between_connections(
    stores: CassandraStores, other: CassandraStores
) -> None:
    chat = unique("chat-")
    await stores.messages.append([msg(chat, 1, body="here first")])
    await other.messages.append(
        [msg(chat, 1, body="there second"), msg(chat, 2, body="there first")]
    )
    await stores.messages.append([msg(chat, 2, body="here second")])

    for store in (stores.messages, other.messages):
        got = await store.range(chat)
        assert [(m.seq, m.body) for m in got] == [(1, "here first"), (2, "there first")]


async def test_find_client_msg_gives_the_lowest_seq(stores: CassandraStores) -> None:
    chat = unique("chat-")
    await stores.messages.append([msg(chat, 7, client_msg_id="same")])
    await stores.messages.append([msg(chat, 3, client_msg_id="same")])

    found = await stores.messages.find_client_msg(chat, "alice", "same")
    assert found is not None
    assert found.seq == 3


async def test_client_msg_ids_are_forgotten_after_the_ttl(stores: CassandraStores) -> None:
    async with await CassandraStores.connect(
        HOSTS, stores.schema.keyspace, create_schema=False, client_msg_ttl=1
    ) as short:
        chat = unique("chat-")
        await short.messages.append([msg(chat, 1, client_msg_id="once")])
        assert await short.messages.find_client_msg(chat, "alice", "once") == msg(
            chat, 1, client_msg_id="once"
        )
        await anyio.sleep(2.2)

        assert await short.messages.find_client_msg(chat, "alice", "once") is None
        assert seqs(await short.messages.range(chat)) == [1]


async def test_a_watermark_is_stored_as_a_max_register(stores: CassandraStores) -> None:
    chat = unique("chat-")
    await stores.receipts.advance(chat, "bob", delivered_seq=12, read_seq=10, now_ms=500)
    ks = stores.schema.keyspace
    select = (
        "SELECT delivered_seq, writetime(delivered_seq) AS dt, read_seq, writetime(read_seq) "
        f"AS rt FROM {ks}.watermarks WHERE chat_id=%s AND user_id=%s"
    )

    (row,) = await cql(stores, select, (chat, "bob"))
    assert (row["delivered_seq"], row["dt"], row["read_seq"], row["rt"]) == (12, 12, 10, 10)
    # A lower value written late (a stale replica, a replayed receipt) loses whatever the order.
    await cql(
        stores,
        f"UPDATE {ks}.watermarks USING TIMESTAMP 4 SET read_seq = 4 "
        "WHERE chat_id=%s AND user_id=%s",
        (chat, "bob"),
    )
    got = await stores.receipts.get(chat, "bob")
    assert (got.delivered_seq, got.read_seq, got.updated_ms) == (12, 10, 500)


async def test_receipts_from_two_processes_end_at_the_maximum(
    stores: CassandraStores, other: CassandraStores
) -> None:
    chat = unique("chat-")
    receipts = [(d, r) for d in range(0, 60, 3) for r in range(0, 50, 7)]
    random.Random(3).shuffle(receipts)

    async def send(store: CassandraStores, part: list[tuple[int, int]]) -> None:
        for n, (delivered, read) in enumerate(part):
            got = await store.receipts.advance(
                chat, "bob", delivered_seq=delivered, read_seq=read, now_ms=n
            )
            assert got.delivered_seq >= max(delivered, read, got.read_seq)
            assert got.read_seq >= read

    async with anyio.create_task_group() as tg:
        for i, store in enumerate([stores, other, stores, other]):
            tg.start_soon(send, store, receipts[i::4])

    final = await other.receipts.get(chat, "bob")
    assert (final.delivered_seq, final.read_seq) == (57, 49)


async def test_concurrent_member_changes_all_apply(
    stores: CassandraStores, other: CassandraStores
) -> None:
    chat = unique("chat-")
    users = [f"{chat}-user-{n}" for n in range(16)]
    await stores.membership.create_chat(ChatInfo(chat, "group", ()))

    async def add(n: int) -> None:
        store = (stores, other)[n % 2].membership
        await store.update_members(chat, add=[users[n]])

    async with anyio.create_task_group() as tg:
        for n in range(16):
            tg.start_soon(add, n)
    got = await other.membership.get_chat(chat)
    assert got is not None
    assert sorted(got.members) == sorted(users)

    async def remove(n: int) -> None:
        store = (stores, other)[n % 2].membership
        await store.update_members(chat, remove=[users[n]])

    async with anyio.create_task_group() as tg:
        for n in range(0, 16, 2):
            tg.start_soon(remove, n)
    got = await stores.membership.get_chat(chat)
    assert got is not None
    assert sorted(got.members) == sorted(users[1::2])
    for n, user in enumerate(users):
        assert await stores.membership.chats_of(user) == ([chat] if n % 2 else [])


async def test_concurrent_creates_agree_on_one_chat(
    stores: CassandraStores, other: CassandraStores
) -> None:
    chat = unique("chat-")
    results: list[ChatInfo] = []

    async def create(n: int) -> None:
        store = (stores, other)[n % 2].membership
        results.append(
            await store.create_chat(ChatInfo(chat, "group", (f"{chat}-{n}",), title=f"{n}"))
        )

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(create, n)

    (winner,) = set(results)
    assert await stores.membership.get_chat(chat) == winner
    for n in range(8):
        user = f"{chat}-{n}"
        assert await other.membership.chats_of(user) == ([chat] if user in winner.members else [])


async def test_interrupted_membership_writes_are_repaired(stores: CassandraStores) -> None:
    """A writer that died after changing ``chats`` and before its ``user_chats`` mirror."""
    chat = unique("chat-")
    ks = stores.schema.keyspace
    members = stores.membership
    await cql(
        stores,
        f"INSERT INTO {ks}.chats (chat_id, kind, title, created_ms, members, version) "
        "VALUES (%s, 'group', NULL, 5, ['alice', 'bob'], 1) IF NOT EXISTS",
        (chat,),
    )
    assert chat not in await members.chats_of("bob")

    created = await members.create_chat(ChatInfo(chat, "group", ("carol",)))
    assert created == ChatInfo(chat, "group", ("alice", "bob"), created_ms=5)
    assert chat in await members.chats_of("alice")
    assert chat in await members.chats_of("bob")
    assert chat not in await members.chats_of("carol")

    await cql(
        stores,
        f"UPDATE {ks}.chats SET members = ['bob', 'carol'], version = 2 "
        "WHERE chat_id = %s IF version = 1",
        (chat,),
    )
    again = await members.update_members(chat, add=["carol"], remove=["alice"])
    assert again.members == ("bob", "carol")
    assert chat not in await members.chats_of("alice")
    assert chat in await members.chats_of("carol")


async def test_reads_page_through_long_results(stores: CassandraStores) -> None:
    """The module's page size is 7: these results take several pages."""
    chat = unique("chat-")
    users = [f"user-{n:02}" for n in range(50)]
    for n, user in enumerate(users):
        await stores.receipts.advance(chat, user, read_seq=n + 1, now_ms=n)
    user = unique("user-")
    chats = sorted(f"{chat}-{n:02}" for n in range(30))
    for c in chats:
        await stores.membership.create_chat(ChatInfo(c, "group", (user,)))

    marks = await stores.receipts.for_chat(chat)
    assert sorted(marks) == users
    assert all(marks[u].read_seq == n + 1 for n, u in enumerate(users))
    assert await stores.membership.chats_of(user) == chats


async def test_values_beyond_cassandra_integers_are_refused(stores: CassandraStores) -> None:
    chat = unique("chat-")
    top = 2**63 - 1
    await stores.messages.append([msg(chat, top)])

    with pytest.raises(InvalidRequest):
        await stores.messages.append([msg(chat, 1), msg(chat, top + 1)])
    with pytest.raises(InvalidRequest):
        await stores.receipts.advance(chat, "bob", read_seq=top + 1)
    assert seqs(await stores.messages.range(chat, limit=10**12)) == [top]
    assert seqs(await stores.messages.range(chat, after=0, before=10**30)) == [top]
    assert await stores.messages.last_seq(chat) == top
    got = await stores.receipts.advance(chat, "bob", read_seq=top, now_ms=1)
    assert (got.delivered_seq, got.read_seq) == (top, top)
    assert await stores.receipts.get(chat, "bob") == got
