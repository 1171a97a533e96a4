"""The Redis adapters on a Redis Cluster (``scripts/services start redis-cluster``)
beyond the conformance suites (which run there too): where the bus's channels live,
a lost sharded subscription, and the clients an adapter refuses.

Fails (never skips) when the cluster is down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from chatcore._redis import make_client
from chatcore.bus.redis import RedisGatewayBus
from chatcore.errors import InvalidRequest
from chatcore.presence.redis import RedisPresenceStore
from tests.services import REDIS_CLUSTER_URL, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services, pytest.mark.cluster]

WAIT_S = 5.0


@pytest.fixture
async def admin() -> AsyncIterator[RedisCluster]:
    require("redis-cluster")
    client = make_client(REDIS_CLUSTER_URL, timeout_s=5.0)
    assert isinstance(client, RedisCluster)
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


def owner(admin: RedisCluster, key: str) -> ClusterNode:
    node = admin.get_node_from_key(key)
    assert node is not None, f"no primary owns {key!r}"
    return node


def connect(node: ClusterNode) -> Redis:
    return Redis(host=node.host, port=int(node.port))


async def on_node(node: ClusterNode, *args: str) -> object:
    async with connect(node) as one:
        return await one.execute_command(*args)  # type: ignore[no-untyped-call]


def spread_gateways(admin: RedisCluster, prefix: str) -> dict[str, ClusterNode]:
    """A gateway name per primary: their channels (``bus:{g:NAME}``) hash to each."""
    found: dict[str, ClusterNode] = {}
    primaries = {n.name for n in admin.get_primaries()}
    i = 0
    while {n.name for n in found.values()} != primaries:
        gateway = f"gw-{i}"
        node = owner(admin, f"{prefix}bus:{{g:{gateway}}}")
        if node.name not in {n.name for n in found.values()}:
            found[gateway] = node
        i += 1
    return found


async def test_bus_channels_are_sharded_on_the_primary_of_their_slot(
    admin: RedisCluster,
) -> None:
    prefix = unique("test:")
    gateways = spread_gateways(admin, prefix)
    assert len(gateways) == 3
    async with RedisGatewayBus(REDIS_CLUSTER_URL, prefix=prefix) as bus:
        async with bus.subscribe("gw-a") as first:
            channel = f"{prefix}bus:{{g:gw-a}}"
            home = owner(admin, channel)
            for node in admin.get_primaries():
                shard = await on_node(node, "PUBSUB", "SHARDNUMSUB", channel)
                classic = await on_node(node, "PUBSUB", "NUMSUB", channel)
                expected = 1 if node.name == home.name else 0
                assert shard == [channel.encode(), expected], node.name
                assert classic == [channel.encode(), 0], node.name
            await bus.publish("gw-a", b"one")
            with anyio.fail_after(WAIT_S):
                assert await anext(first) == b"one"

        # One subscriber per primary; publish_many goes to all three in one call.
        g0, g1, g2 = gateways
        async with bus.subscribe(g0) as s0, bus.subscribe(g1) as s1, bus.subscribe(g2) as s2:
            batch = [(g, f"{g}:{i}".encode()) for i in range(5) for g in gateways]
            await bus.publish_many(batch)
            with anyio.fail_after(WAIT_S):
                for gateway, payloads in zip(gateways, (s0, s1, s2), strict=True):
                    got = [await anext(payloads) for _ in range(5)]
                    assert got == [f"{gateway}:{i}".encode() for i in range(5)]


async def test_a_sharded_subscription_whose_connection_is_killed_reconnects(
    admin: RedisCluster,
) -> None:
    prefix = unique("test:")
    name = unique("bus-")
    url = f"{REDIS_CLUSTER_URL}?client_name={name}"
    async with RedisGatewayBus(url, prefix=prefix) as bus, bus.subscribe("gw") as payloads:
        await bus.publish("gw", b"before")
        with anyio.fail_after(WAIT_S):
            assert await anext(payloads) == b"before"
        async with connect(owner(admin, f"{prefix}bus:{{g:gw}}")) as one:
            subscribers = [c for c in await one.client_list(_type="pubsub") if c["name"] == name]
            assert len(subscribers) == 1
            await one.client_kill_filter(_id=subscribers[0]["id"])

        got: list[bytes] = []

        async def read() -> None:
            got.append(await anext(payloads))

        with anyio.fail_after(WAIT_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                while not got:
                    await bus.publish("gw", b"after")
                    await anyio.sleep(0.05)
        assert got == [b"after"]


async def test_presence_changes_reach_subscribers_across_the_cluster(admin: RedisCluster) -> None:
    """Presence's change feed is one classic channel (its Lua scripts publish from
    every presence shard's slot): on a cluster it reaches subscribers on any node."""
    prefix = unique("test:")
    async with (
        RedisPresenceStore(REDIS_CLUSTER_URL, prefix=prefix, shards=8) as store,
        store.changes() as changes,
    ):
        users = [f"user-{i}" for i in range(12)]
        for user in users:
            assert await store.touch(user, "phone", ttl_s=30, now_ms=0)
        with anyio.fail_after(WAIT_S):
            seen = {(await anext(changes)).user for _ in users}
        assert seen == set(users)


async def test_a_borrowed_cluster_client_that_decodes_responses_is_refused(
    admin: RedisCluster,
) -> None:
    client = RedisCluster(host="127.0.0.1", port=7001, decode_responses=True)
    try:
        with pytest.raises(InvalidRequest, match="decode_responses"):
            RedisGatewayBus(client)
    finally:
        await client.aclose()
