"""The production backends: Kafka (log), Cassandra (stores), Redis (live state).

``await production_backends(config)`` connects to all three and returns the
:class:`~chatcore.node.Backends` a ``ChatNode`` runs on::

    config = ProductionConfig.load("chatcore.toml")
    async with ChatNode(await production_backends(config), NodeOptions(
        partitions=config.partitions, topic_prefix=config.topic_prefix,
    )) as node:
        ...

Needs the extras: ``pip install 'chatcore[kafka,cassandra,redis]'``.
"""

from __future__ import annotations

from chatcore.config import ProductionConfig
from chatcore.node import Backends, NodeOptions, Role
from chatcore.offline.log import LoggingPushNotifier

__all__ = ["node_options", "production_backends"]


async def production_backends(config: ProductionConfig, *, create_schema: bool = True) -> Backends:
    """Connect to Kafka, Cassandra and Redis as ``config`` says.

    Raises :class:`~chatcore.errors.Unavailable` when a service cannot be reached.
    """
    from redis.asyncio import Redis

    from chatcore.bus.redis import RedisGatewayBus
    from chatcore.cache.redis import RedisHotCache
    from chatcore.ids.redis import RedisNodeIdLease
    from chatcore.log.kafka import KafkaLog
    from chatcore.offline.redis import RedisOfflineIndex
    from chatcore.presence.redis import RedisPresenceStore
    from chatcore.registry.redis import RedisConnectionRegistry
    from chatcore.store.cassandra import CassandraStores

    stores = await CassandraStores.connect(
        config.cassandra_hosts,
        config.cassandra_keyspace,
        replication=dict(config.cassandra_replication),
        create_schema=create_schema,
    )
    redis = Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=5)
    prefix = config.redis_prefix
    return Backends(
        log=KafkaLog(config.kafka_bootstrap, client_id="chatcore"),
        messages=stores.messages,
        receipts=stores.receipts,
        membership=stores.membership,
        presence=RedisPresenceStore(redis, prefix=prefix),
        registry=RedisConnectionRegistry(redis, prefix=prefix),
        bus=RedisGatewayBus(redis, prefix=prefix),
        cache=RedisHotCache(redis, prefix=prefix),
        offline=RedisOfflineIndex(redis, prefix=prefix),
        push=LoggingPushNotifier(),
        leases=RedisNodeIdLease(redis, prefix=prefix),
        extra=[stores, redis],
    )


def node_options(
    config: ProductionConfig, *, roles: frozenset[Role] | None = None, **options: object
) -> NodeOptions:
    """NodeOptions matching ``config`` (partitions, topic prefix) for the given roles."""
    if roles is not None:
        options["roles"] = roles
    return NodeOptions(
        partitions=config.partitions,
        topic_prefix=config.topic_prefix,
        presence_ttl_s=config.presence_ttl_s,
        heartbeat_s=config.heartbeat_s,
        **options,  # type: ignore[arg-type]
    )
