"""The adapters a ``ChatNode`` runs on: one per port, and the three ready-made sets.

* :meth:`Backends.in_memory`: everything in this process's memory.
* :meth:`Backends.embedded`: the log and the stores in SQLite files, live state in memory.
* :func:`production_backends`: Kafka (log), Cassandra (stores), Redis (live state)::

      config = ProductionConfig.load("chatcore.toml")
      options = NodeOptions.from_config(config)
      async with ChatNode(await production_backends(config), options) as node:
          ...

  Needs the extras: ``pip install 'chatcore[kafka,cassandra,redis]'``.

Each factory imports its adapters when it is called, so this module (and the node
built on it) depends on the ports only. To mix backends, or to plug in your own,
build :class:`Backends` field by field (see the "Write your own backend" page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatcore.bus._base import GatewayBus
from chatcore.cache._base import HotCache
from chatcore.config import ProductionConfig
from chatcore.ids._base import NodeIdLease
from chatcore.keys._base import KeyDirectory
from chatcore.keys.memory import MemoryKeyDirectory
from chatcore.log._base import PartitionedLog
from chatcore.offline._base import OfflineIndex, PushNotifier
from chatcore.presence._base import PresenceStore
from chatcore.push._base import PushTokenStore
from chatcore.push.memory import MemoryPushTokenStore
from chatcore.push.targets import TargetRules
from chatcore.registry._base import ConnectionRegistry
from chatcore.store._base import MembershipStore, MessageStore, ReceiptStore
from chatcore.uploads import MemoryUploadLedger, UploadLedger

if TYPE_CHECKING:
    from chatcore.media._base import BlobStore

__all__ = ["Backends", "production_backends"]


@dataclass(kw_only=True)
class Backends:
    """One adapter per port. ``ChatNode`` opens them on enter and closes them on exit."""

    log: PartitionedLog
    messages: MessageStore
    receipts: ReceiptStore
    membership: MembershipStore
    presence: PresenceStore
    registry: ConnectionRegistry
    bus: GatewayBus
    cache: HotCache
    offline: OfflineIndex
    push: PushNotifier
    leases: NodeIdLease
    push_tokens: PushTokenStore = field(default_factory=MemoryPushTokenStore)
    """Where each device's push target is kept (``push.register`` over the wire)."""
    keys: KeyDirectory = field(default_factory=MemoryKeyDirectory)
    """Each device's public key for end-to-end encryption (``keys.publish`` over the wire)."""
    extra: list[Any] = field(default_factory=list)
    """Other resources to ``aclose()`` last (a shared SQLite database, a Redis client)."""
    uploads: UploadLedger = field(default_factory=MemoryUploadLedger)
    """Who uploaded which blob: the Router checks a message's attachment against it."""
    blobs: BlobStore | None = None
    """Where media bytes live (None: no media; the server refuses uploads)."""

    @classmethod
    def in_memory(cls, *, push_rules: TargetRules | None = None) -> Backends:
        """Everything in this process's memory: fast, nothing survives a restart.

        ``push_rules`` (``TargetRules()``): what a device may register as push target.
        """
        from chatcore.bus.memory import MemoryGatewayBus
        from chatcore.cache.memory import MemoryHotCache
        from chatcore.ids.memory import MemoryNodeIdLease
        from chatcore.log.memory import MemoryLog
        from chatcore.offline.log import LoggingPushNotifier
        from chatcore.offline.memory import MemoryOfflineIndex
        from chatcore.presence.memory import MemoryPresenceStore
        from chatcore.registry.memory import MemoryConnectionRegistry
        from chatcore.store.memory import (
            MemoryMembershipStore,
            MemoryMessageStore,
            MemoryReceiptStore,
        )

        return cls(
            log=MemoryLog(),
            messages=MemoryMessageStore(),
            receipts=MemoryReceiptStore(),
            membership=MemoryMembershipStore(),
            presence=MemoryPresenceStore(),
            registry=MemoryConnectionRegistry(),
            bus=MemoryGatewayBus(),
            cache=MemoryHotCache(),
            offline=MemoryOfflineIndex(),
            push=LoggingPushNotifier(),
            leases=MemoryNodeIdLease(),
            push_tokens=MemoryPushTokenStore(rules=push_rules),
            blobs=_memory_blobs(),
        )

    @classmethod
    def embedded(cls, data_dir: str | Path, *, push_rules: TargetRules | None = None) -> Backends:
        """The log and the stores in SQLite files under ``data_dir``; live state in memory;
        media blobs in ``data_dir/media`` (with the ``media`` extra).

        One process at a time may open a data folder. ``push_rules``: as in :meth:`in_memory`.
        """
        from chatcore._sqlite import SqliteDatabase
        from chatcore.keys.sqlite import SqliteKeyDirectory
        from chatcore.log.sqlite import SqliteLog
        from chatcore.push.sqlite import SqlitePushTokenStore
        from chatcore.store.sqlite import (
            SqliteMembershipStore,
            SqliteMessageStore,
            SqliteReceiptStore,
        )
        from chatcore.uploads.sqlite import SqliteUploadLedger

        data = Path(data_dir)
        data.mkdir(parents=True, exist_ok=True, mode=0o700)  # private (SqliteDatabase)
        db = SqliteDatabase(data / "store.db")
        backends = cls.in_memory()
        backends.log = SqliteLog(data / "log.db")
        backends.messages = SqliteMessageStore(db)
        backends.receipts = SqliteReceiptStore(db)
        backends.membership = SqliteMembershipStore(db)
        backends.push_tokens = SqlitePushTokenStore(db, rules=push_rules)
        backends.keys = SqliteKeyDirectory(db)
        backends.uploads = SqliteUploadLedger(db)
        backends.blobs = _filesystem_blobs(data / "media")
        backends.extra.append(db)
        return backends


def _memory_blobs() -> BlobStore | None:
    """A memory blob store, or None without the ``media`` extra."""
    try:
        from chatcore.media.memory import MemoryBlobStore
    except ImportError:
        return None
    return MemoryBlobStore()


def _filesystem_blobs(root: Path) -> BlobStore | None:
    """A filesystem blob store under ``root``, or None without the ``media`` extra."""
    try:
        from chatcore.media.filesystem import FilesystemBlobStore
    except ImportError:
        return None
    return FilesystemBlobStore(root)


async def production_backends(
    config: ProductionConfig, *, create_schema: bool = True, push_rules: TargetRules | None = None
) -> Backends:
    """Connect to Kafka, Cassandra and Redis (and S3 if ``config.s3_bucket`` is set) as
    ``config`` says; the upload ledger is in Redis.

    Push targets and device keys are kept with the stores: in Cassandra, or in the
    SQLite file of ``config.sqlite_store`` (``push_rules``: as in :meth:`Backends.in_memory`).

    Raises :class:`~chatcore.errors.Unavailable` when a service cannot be reached.
    """
    from chatcore._redis import make_client
    from chatcore.bus.redis import RedisGatewayBus
    from chatcore.cache.redis import RedisHotCache
    from chatcore.ids.redis import RedisNodeIdLease
    from chatcore.log.kafka import KafkaLog
    from chatcore.offline.log import LoggingPushNotifier
    from chatcore.offline.redis import RedisOfflineIndex
    from chatcore.presence.redis import RedisPresenceStore
    from chatcore.registry.redis import RedisConnectionRegistry
    from chatcore.uploads.redis import RedisUploadLedger

    stores: Any
    if config.sqlite_store:
        stores = _sqlite_stores(Path(config.sqlite_store))
    else:
        from chatcore.store.cassandra import CassandraStores

        stores = await CassandraStores.connect(
            config.cassandra_hosts,
            config.cassandra_keyspace,
            replication=dict(config.cassandra_replication),
            create_schema=create_schema,
        )
    redis = make_client(config.redis_url, timeout_s=5.0)
    prefix = config.redis_prefix
    return Backends(
        log=KafkaLog(
            config.kafka_bootstrap,
            client_id="chatcore",
            group_prefix=config.topic_prefix,  # deployments sharing a cluster share no group
            replication_factor=config.kafka_replication_factor,
        ),
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
        push_tokens=stores.push_tokens(push_rules),
        keys=stores.keys(),
        extra=[stores, redis],
        uploads=RedisUploadLedger(redis, prefix=prefix),
        blobs=_s3_blobs(config),
    )


def _s3_blobs(config: ProductionConfig) -> BlobStore | None:
    """The S3 blob store of ``config`` (None without a bucket); needs the ``s3`` extra."""
    if not config.s3_bucket:
        return None
    from chatcore.media.s3 import S3BlobStore

    return S3BlobStore(
        config.s3_bucket,
        endpoint_url=config.s3_endpoint,
        region=config.s3_region,
        access_key=config.s3_access_key,
        secret_key=config.s3_secret_key,
        prefix=config.s3_prefix,
        create_bucket=config.s3_create_bucket,
    )


@dataclass
class _SqliteStores:
    """The three stores of ``ProductionConfig.sqlite_store`` on one SQLite file."""

    db: Any
    messages: MessageStore
    receipts: ReceiptStore
    membership: MembershipStore

    def push_tokens(self, rules: TargetRules | None) -> PushTokenStore:
        from chatcore.push.sqlite import SqlitePushTokenStore

        return SqlitePushTokenStore(self.db, rules=rules)

    def keys(self) -> KeyDirectory:
        from chatcore.keys.sqlite import SqliteKeyDirectory

        return SqliteKeyDirectory(self.db)

    async def aclose(self) -> None:
        await self.db.aclose()


def _sqlite_stores(path: Path) -> _SqliteStores:
    from chatcore._sqlite import SqliteDatabase
    from chatcore.store.sqlite import (
        SqliteMembershipStore,
        SqliteMessageStore,
        SqliteReceiptStore,
    )

    db = SqliteDatabase(path)
    return _SqliteStores(
        db, SqliteMessageStore(db), SqliteReceiptStore(db), SqliteMembershipStore(db)
    )
