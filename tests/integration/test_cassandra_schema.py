"""Cassandra schema and connection against a real server: migrations, settings, errors.

Each test that changes the schema gets its own keyspace, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import anyio.to_thread
import pytest
from cassandra.cluster import Cluster

from chatcore.errors import ChatcoreClosed, InvalidRequest, Unavailable
from chatcore.model import ChatInfo, StoredMessage
from chatcore.store._cassandra_session import contact_point
from chatcore.store.cassandra import (
    SCHEMA_VERSION,
    CassandraStores,
    StoreSchema,
    ensure_schema,
    read_schema,
)
from tests.services import CASSANDRA_HOSTS, require, unique

pytestmark = pytest.mark.anyio

HOSTS = CASSANDRA_HOSTS.split(",")
TABLES = {
    "chat_buckets",
    "chats",
    "client_msgs",
    "messages",
    "push_targets",
    "chat_roles",
    "device_keys",
    "schema_migrations",
    "settings",
    "user_chats",
    "watermarks",
}


@pytest.fixture
async def keyspace() -> AsyncIterator[str]:
    """A fresh keyspace name; the keyspace, if a test created it, is dropped afterwards."""
    require("cassandra")
    name = unique("it_schema_")
    yield name

    def drop() -> None:
        cluster = Cluster([contact_point(h) for h in HOSTS], protocol_version=5)
        try:
            cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}")
        finally:
            cluster.shutdown()

    await anyio.to_thread.run_sync(drop)


@pytest.fixture
async def stores(keyspace: str) -> AsyncIterator[CassandraStores]:
    async with await CassandraStores.connect(HOSTS, keyspace) as opened:
        yield opened


async def cql(stores: CassandraStores, query: str, params: Iterable[object] = ()) -> list[Any]:
    session = stores.session
    return await anyio.to_thread.run_sync(lambda: list(session.execute(query, tuple(params))))


async def tables_of(stores: CassandraStores, keyspace: str) -> set[str]:
    rows = await cql(
        stores, "SELECT table_name FROM system_schema.tables WHERE keyspace_name=%s", (keyspace,)
    )
    return {row["table_name"] for row in rows}


async def migrations_of(stores: CassandraStores, keyspace: str) -> list[int]:
    return sorted(
        r["version"] for r in await cql(stores, f"SELECT * FROM {keyspace}.schema_migrations")
    )


async def ensure(stores: CassandraStores, keyspace: str, **options: Any) -> StoreSchema:
    session = stores.session
    return await anyio.to_thread.run_sync(lambda: ensure_schema(session, keyspace, **options))


def message(seq: int) -> StoredMessage:
    return StoredMessage("c", seq, seq, "alice", f"k{seq}", "text", f"body {seq}", seq)


@pytest.mark.services
async def test_connect_creates_every_table_once(stores: CassandraStores, keyspace: str) -> None:
    assert (stores.schema.keyspace, stores.schema.version) == (keyspace, SCHEMA_VERSION)
    assert stores.schema.bucket_size == 1000
    assert await tables_of(stores, keyspace) == TABLES
    assert await migrations_of(stores, keyspace) == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.services
async def test_ensure_schema_again_changes_nothing(stores: CassandraStores, keyspace: str) -> None:
    chat = ChatInfo("g", "group", ("alice", "bob"), title="t", created_ms=3)
    await stores.messages.append([message(1), message(2)])
    await stores.membership.create_chat(chat)

    for _ in range(2):
        again = await ensure(stores, keyspace)
        assert (again.version, again.bucket_size) == (SCHEMA_VERSION, 1000)
    async with await CassandraStores.connect(HOSTS, keyspace) as reopened:
        assert [m.seq for m in await reopened.messages.range("c")] == [1, 2]
        assert await reopened.membership.get_chat("g") == chat
    assert await tables_of(stores, keyspace) == TABLES
    assert await migrations_of(stores, keyspace) == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.services
async def test_an_interrupted_migration_is_completed(
    stores: CassandraStores, keyspace: str
) -> None:
    """As if the process died after some of a migration's tables and before recording it."""
    await stores.messages.append([message(1)])
    await cql(stores, f"DROP TABLE {keyspace}.user_chats")
    await cql(stores, f"DELETE FROM {keyspace}.schema_migrations WHERE version=%s", (1,))
    with pytest.raises(Unavailable, match="run ensure_schema"):
        await anyio.to_thread.run_sync(lambda: read_schema(stores.session, keyspace))

    schema = await ensure(stores, keyspace)

    assert schema.version == SCHEMA_VERSION
    assert await tables_of(stores, keyspace) == TABLES
    assert await migrations_of(stores, keyspace) == list(range(1, SCHEMA_VERSION + 1))
    assert [m.seq for m in await stores.messages.range("c")] == [1]


@pytest.mark.services
async def test_the_bucket_size_is_fixed_when_the_keyspace_is_created(keyspace: str) -> None:
    async with await CassandraStores.connect(HOSTS, keyspace, bucket_size=10) as first:
        assert first.schema.bucket_size == 10
        await first.messages.append([message(s) for s in range(1, 25)])
    async with await CassandraStores.connect(HOSTS, keyspace) as second:
        assert second.schema.bucket_size == 10
        assert await second.messages.last_seq("c") == 24
    async with await CassandraStores.connect(HOSTS, keyspace, create_schema=False) as third:
        assert third.schema.bucket_size == 10
    with pytest.raises(InvalidRequest, match="buckets of 10"):
        await CassandraStores.connect(HOSTS, keyspace, bucket_size=1000)
    with pytest.raises(InvalidRequest, match="buckets of 10"):
        await CassandraStores.connect(HOSTS, keyspace, create_schema=False, bucket_size=20)


@pytest.mark.services
async def test_the_keyspace_is_created_with_the_configured_replication(keyspace: str) -> None:
    """NetworkTopologyStrategy with a factor per data center (the dev node's snitch
    names its data center ``datacenter1``); bad settings change nothing."""
    with pytest.raises(InvalidRequest, match="data center"):
        await CassandraStores.connect(
            HOSTS, keyspace, replication={"class": "NetworkTopologyStrategy", "dc 1": 1}
        )
    replication: dict[str, str | int] = {"class": "NetworkTopologyStrategy", "datacenter1": 1}
    async with await CassandraStores.connect(HOSTS, keyspace, replication=replication) as stores:
        rows = await cql(
            stores,
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name=%s",
            (keyspace,),
        )
        (row,) = rows
        assert row["replication"] == {
            "class": "org.apache.cassandra.locator.NetworkTopologyStrategy",
            "datacenter1": "1",
        }


@pytest.mark.services
async def test_without_create_schema_the_keyspace_must_exist(keyspace: str) -> None:
    with pytest.raises(Unavailable, match="run ensure_schema"):
        await CassandraStores.connect(HOSTS, keyspace, create_schema=False)

    async with await CassandraStores.connect(HOSTS, keyspace):
        pass
    async with await CassandraStores.connect(HOSTS, keyspace, create_schema=False) as opened:
        assert opened.schema.version == SCHEMA_VERSION


@pytest.mark.services
async def test_a_newer_schema_is_accepted(stores: CassandraStores, keyspace: str) -> None:
    """Migrations only add: code that needs version N runs on a keyspace at N + k."""
    await cql(
        stores,
        f"INSERT INTO {keyspace}.schema_migrations (version, description) VALUES (%s, %s)",
        (SCHEMA_VERSION + 5, "from a newer chatcore"),
    )

    async with await CassandraStores.connect(HOSTS, keyspace, create_schema=False) as opened:
        assert opened.schema.version == SCHEMA_VERSION + 5
    assert (await ensure(stores, keyspace)).version == SCHEMA_VERSION + 5


@pytest.mark.services
async def test_a_keyspace_dropped_under_a_store_makes_it_unavailable(keyspace: str) -> None:
    async with await CassandraStores.connect(HOSTS, keyspace) as opened:
        await opened.messages.append([message(1)])
        await cql(opened, f"DROP KEYSPACE {keyspace}")

        with pytest.raises(Unavailable) as caught:
            await opened.messages.range("c")
        assert caught.value.__cause__ is not None
        assert type(caught.value.__cause__).__module__.startswith("cassandra")
        with pytest.raises(Unavailable):
            await opened.receipts.advance("c", "bob", read_seq=1)


@pytest.mark.services
async def test_closing_is_idempotent_and_closes_the_stores(stores: CassandraStores) -> None:
    messages = stores.messages
    await stores.aclose()
    await stores.aclose()
    await messages.aclose()

    with pytest.raises(ChatcoreClosed):
        await messages.last_seq("c")
    with pytest.raises(ChatcoreClosed):
        await stores.receipts.get("c", "bob")
    with pytest.raises(ChatcoreClosed):
        await stores.membership.chats_of("bob")


async def test_an_unreachable_cluster_is_unavailable() -> None:
    with anyio.fail_after(30):
        with pytest.raises(Unavailable, match=r"127\.0\.0\.1:1") as caught:
            await CassandraStores.connect(["127.0.0.1:1"], "chatcore", connect_timeout=1)
    assert type(caught.value.__cause__).__name__ == "NoHostAvailable"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("keyspace", "bad-name"),
        ("keyspace", "1starts_with_a_digit"),
        ("keyspace", "x" * 49),
        ("consistency", "MOSTLY"),
        ("client_msg_ttl", 0),
        ("bucket_size", 0),
        ("max_concurrency", 0),
    ],
)
async def test_bad_options_are_refused_before_connecting(option: str, value: object) -> None:
    options: dict[str, Any] = {"keyspace": "chatcore", option: value}
    with pytest.raises(InvalidRequest):
        # Port 1 is closed: reaching it would fail with Unavailable instead.
        await CassandraStores.connect(["127.0.0.1:1"], **options, connect_timeout=1)


def test_contact_points() -> None:
    assert contact_point("db1") == "db1"
    assert contact_point("db1:9142") == ("db1", 9142)
    assert contact_point("[::1]:9042") == ("::1", 9042)
    assert contact_point("[::1]") == "::1"
    assert contact_point("::1") == "::1"
