"""The whole pipeline on the clusters: ``production_backends`` from a config naming the
three Kafka brokers (topics of three replicas), a ``redis+cluster://`` URL and a
Cassandra keyspace, then messages from send to every connected device and into history.

Fails (never skips) when a cluster or Cassandra is down.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
import pytest

from chatcore._redis import RedisCluster
from chatcore.backends import production_backends
from chatcore.config import ProductionConfig
from chatcore.events import MessageEvent
from chatcore.log.kafka import KafkaLog
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.hub import LocalConnection
from chatcore.presence.redis import RedisPresenceStore
from tests.services import (
    CASSANDRA_HOSTS,
    KAFKA_CLUSTER_BOOTSTRAP,
    REDIS_CLUSTER_URL,
    require,
    unique,
)

pytestmark = [pytest.mark.anyio, pytest.mark.services, pytest.mark.cluster]


@pytest.fixture
async def config() -> AsyncIterator[ProductionConfig]:
    for service in ("kafka-cluster", "redis-cluster", "cassandra"):
        require(service)
    config = ProductionConfig.load(
        env={
            "CHATCORE_KAFKA_BOOTSTRAP": KAFKA_CLUSTER_BOOTSTRAP,
            "CHATCORE_KAFKA_REPLICATION_FACTOR": "3",
            "CHATCORE_REDIS_URL": REDIS_CLUSTER_URL,
            "CHATCORE_CASSANDRA_HOSTS": CASSANDRA_HOSTS,
            "CHATCORE_CASSANDRA_KEYSPACE": unique("clusters_"),
            "CHATCORE_TOPIC_PREFIX": unique("clusters") + ".",
            "CHATCORE_REDIS_PREFIX": unique("clusters") + ":",
            "CHATCORE_PARTITIONS": "3",
        }
    )
    yield config
    await anyio.to_thread.run_sync(_drop_keyspace, config.cassandra_keyspace)


def _drop_keyspace(keyspace: str) -> None:
    from cassandra.cluster import Cluster

    from chatcore.store._cassandra_session import contact_point

    cluster = Cluster([contact_point(h) for h in CASSANDRA_HOSTS.split(",")])
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()


async def seqs(conn: LocalConnection, n: int) -> list[int]:
    got: list[int] = []
    with anyio.fail_after(30):
        while len(got) < n:
            event = await conn.receive()
            if isinstance(event, MessageEvent):
                got.append(event.message.seq)
    return got


async def test_messages_flow_through_the_clusters(config: ProductionConfig) -> None:
    backends = await production_backends(config)
    assert isinstance(backends.presence, RedisPresenceStore)
    assert isinstance(backends.presence._redis.client, RedisCluster)
    async with ChatNode(backends, NodeOptions.from_config(config)) as node:
        log = node.backends.log
        assert isinstance(log, KafkaLog)
        admin = await log._clients.admin()
        (info,) = await admin.describe_topics([node.topics.messages])
        assert all(len(p["replicas"]) == 3 for p in info["partitions"]), info

        chats = [
            await node.create_chat("alice", kind="group", members=["bob"], title=f"t{i}")
            for i in range(4)
        ]
        async with node.connect("bob", "phone") as bob, node.connect("bob", "laptop") as laptop:
            for i in range(5):
                for chat in chats:
                    await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body=f"{i}")
            # Each chat's seq 1..5, in order, on both devices (via the sharded bus).
            for conn in (bob, laptop):
                got = await seqs(conn, 20)
                assert sorted(got) == sorted(list(range(1, 6)) * 4)
            # The gateway marked bob's devices online in the presence shards.
            states = await node.backends.presence.states(["bob"], now_ms=int(time.time() * 1000))
            assert states["bob"].online
        await node.settled(timeout_s=60)
        for chat in chats:
            page = await node.history("bob", chat.chat_id, after=0, limit=10)
            assert [m.body for m in page.messages] == [str(i) for i in range(5)]
