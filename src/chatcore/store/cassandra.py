"""Stores of messages, watermarks and membership in Cassandra: durable, any number of processes.

Open all three over one connection with :meth:`CassandraStores.connect`. The data
model and the reasons behind it are in ``docs/cassandra.md``; in short::

    messages      ((chat_id, bucket), seq)          msgpack StoredMessage; bucket = seq // size
    chat_buckets  (chat_id, bucket DESC)            the buckets a chat has (grow-only)
    client_msgs   ((chat_id, sender), client_msg_id, seq)   with a TTL: the dedupe window
    watermarks    (chat_id, user_id)                delivered_seq, read_seq, updated_ms
    chats         (chat_id)                         kind, title, created_ms, members, version
    user_chats    (user_id, chat_id)                the same membership, by user
    push_targets  (user_id, device)                 msgpack PushTarget (see chatcore.push.cassandra)
    chat_roles    (chat_id)                         msgpack ChatRoles, changed by compare-and-set
    device_keys   (user_id, device)                 version, public_key; static generation
                                                    (see chatcore.keys.cassandra)

Without a read-modify-write race and without lightweight transactions on the hot
paths: a message's first write wins (writes carry falling timestamps), a
watermark is a max-register (written with its own value as timestamp), and only
chat creation and membership changes use compare-and-set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chatcore._resource import ClosingContext
from chatcore.errors import InvalidRequest
from chatcore.keys.cassandra import CassandraKeyDirectory
from chatcore.keys.rules import KeyRules
from chatcore.push.cassandra import CassandraPushTokenStore
from chatcore.push.targets import TargetRules
from chatcore.store._cassandra_membership import CassandraMembershipStore
from chatcore.store._cassandra_messages import CassandraMessageStore
from chatcore.store._cassandra_receipts import CassandraReceiptStore
from chatcore.store._cassandra_schema import (
    DEFAULT_REPLICATION,
    SCHEMA_VERSION,
    StoreSchema,
    check_keyspace,
    ensure_schema,
    read_schema,
)
from chatcore.store._cassandra_session import CassandraAdapter, CassandraSession

__all__ = [
    "SCHEMA_VERSION",
    "CassandraMembershipStore",
    "CassandraMessageStore",
    "CassandraReceiptStore",
    "CassandraStores",
    "StoreSchema",
    "ensure_schema",
    "read_schema",
]


class CassandraStores(ClosingContext):
    """The message, receipt and membership stores over one Cassandra connection.

    Made by :meth:`connect`. ``messages``, ``receipts`` and ``membership`` share
    the session; closing one of them closes only it, :meth:`aclose` closes all
    and the connection. ``schema`` tells the keyspace, its schema version and its
    bucket size.
    """

    def __init__(
        self,
        db: CassandraSession,
        schema: StoreSchema,
        *,
        prepared: Mapping[type[CassandraAdapter], Mapping[str, Any]],
        client_msg_ttl: int | None,
    ) -> None:
        self._db = db
        self.schema = schema
        self.messages = CassandraMessageStore(
            db,
            prepared[CassandraMessageStore],
            bucket_size=schema.bucket_size,
            client_msg_ttl=client_msg_ttl,
        )
        self.receipts = CassandraReceiptStore(db, prepared[CassandraReceiptStore])
        self.membership = CassandraMembershipStore(db, prepared[CassandraMembershipStore])
        self._push_prepared = prepared[CassandraPushTokenStore]
        self._keys_prepared = prepared[CassandraKeyDirectory]

    @classmethod
    async def connect(
        cls,
        hosts: Sequence[str] = ("127.0.0.1",),
        keyspace: str = "chatcore",
        *,
        port: int = 9042,
        replication: Mapping[str, str | int] = DEFAULT_REPLICATION,
        create_schema: bool = True,
        bucket_size: int | None = None,
        client_msg_ttl: int | None = 30 * 24 * 3600,
        local_dc: str | None = None,
        consistency: str = "LOCAL_QUORUM",
        request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        fetch_size: int = 1000,
        max_concurrency: int = 128,
        protocol_version: int = 5,
    ) -> CassandraStores:
        """Connect, create or check the schema, and prepare every statement.

        ``hosts``: contact points, ``"host"`` or ``"host:port"`` (``port`` is the
        default). ``keyspace``: where the tables live.
        ``replication``: used only when ``create_schema`` creates the keyspace
        (default SimpleStrategy, factor 1: development only; use
        NetworkTopologyStrategy in production). ``create_schema``: run
        :func:`ensure_schema` (else only check the keyspace is at
        :data:`SCHEMA_VERSION`). ``bucket_size``: messages per partition, fixed when
        the keyspace is created (None: the stored one, 1000 for a new keyspace).
        ``client_msg_ttl``: seconds ``find_client_msg`` remembers a client message
        id (default 30 days; None: forever). ``local_dc``: the data center to query
        (None: the first contact point's). ``consistency``: of reads and writes
        (``LOCAL_SERIAL`` for compare-and-set). ``request_timeout``,
        ``connect_timeout``: seconds. ``fetch_size``: rows per page.
        ``max_concurrency``: statements one call runs at once. ``protocol_version``:
        of the native protocol (5 for Cassandra 4.0 and later, 4 for 3.x).

        Raises InvalidRequest for a bad option or a bucket size other than the
        keyspace's, Unavailable if Cassandra cannot be reached or the schema is
        missing.
        """
        keyspace = check_keyspace(keyspace)
        if bucket_size is not None and bucket_size < 1:
            raise InvalidRequest(f"bucket_size must be >= 1, got {bucket_size}")
        if client_msg_ttl is not None and not 1 <= client_msg_ttl <= 630_720_000:
            raise InvalidRequest(f"client_msg_ttl must be 1 s to 20 years, got {client_msg_ttl}")
        db = await CassandraSession.connect(
            hosts,
            port=port,
            local_dc=local_dc,
            consistency=consistency,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            fetch_size=fetch_size,
            max_concurrency=max_concurrency,
            protocol_version=protocol_version,
        )
        try:
            session = db.driver_session
            if create_schema:
                schema = await db.blocking(
                    "creating the schema",
                    lambda: ensure_schema(
                        session, keyspace, replication=replication, bucket_size=bucket_size
                    ),
                )
            else:
                schema = await db.blocking(
                    "reading the schema", lambda: read_schema(session, keyspace)
                )
                if bucket_size is not None and bucket_size != schema.bucket_size:
                    raise InvalidRequest(
                        f"keyspace {keyspace} keeps messages in buckets of "
                        f"{schema.bucket_size}, not {bucket_size}"
                    )
            kinds = (
                CassandraMessageStore,
                CassandraReceiptStore,
                CassandraMembershipStore,
                CassandraPushTokenStore,
                CassandraKeyDirectory,
            )
            prepared: dict[type[CassandraAdapter], Mapping[str, Any]] = {
                kind: await db.prepare(
                    {name: cql.format(ks=keyspace) for name, cql in kind._STATEMENTS.items()}
                )
                for kind in kinds
            }
        except BaseException:
            await db.aclose()  # shielded from cancellation
            raise
        return cls(db, schema, prepared=prepared, client_msg_ttl=client_msg_ttl)

    @property
    def session(self) -> Any:
        """The driver's ``cassandra.cluster.Session``, for what chatcore does not wrap."""
        return self._db.driver_session

    def push_tokens(self, rules: TargetRules | None = None) -> CassandraPushTokenStore:
        """A push token store over this connection (``rules``: ``TargetRules()``).

        Closing it closes only it; :meth:`aclose` ends the connection under it.
        """
        return CassandraPushTokenStore(self._db, self._push_prepared, rules=rules)

    def keys(self, rules: KeyRules | None = None) -> CassandraKeyDirectory:
        """A key directory over this connection (``rules``: ``KeyRules()``).

        Closing it closes only it; :meth:`aclose` ends the connection under it.
        """
        return CassandraKeyDirectory(self._db, self._keys_prepared, rules=rules)

    async def aclose(self) -> None:
        """Close the three stores and the connection. Idempotent."""
        for store in (self.messages, self.receipts, self.membership):
            await store.aclose()
        await self._db.aclose()
