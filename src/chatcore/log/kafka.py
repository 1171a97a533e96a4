"""A PartitionedLog on Apache Kafka through aiokafka: the production backend.

How this works.

* ``append`` goes through one idempotent producer (``acks=all``): a retried batch
  is never duplicated or reordered. A record without a partition is placed by the
  murmur2 hash of its UTF-8 key, as Kafka's Java client does, so one key always
  lands on one partition number, whatever the topic.
* A :class:`KafkaLogConsumer` is a member of a Kafka consumer group (classic
  protocol, eager rebalancing) that reads ``read_committed``. For every partition
  it owns it runs one transactional producer whose ``transactional.id`` is
  :meth:`KafkaLog.transactional_id`. When a partition is assigned, its producer is
  started first: that fences the previous owner's producer and ends its open
  transaction. Only then is the committed offset read and fetching resumed. This
  is Kafka's classic exactly-once scheme (aiokafka has no KIP-447 group metadata).
* ``commit_transaction`` runs one Kafka transaction per input partition named in
  ``offsets``: its offset commit and its outputs (an output goes with the input
  partition of the same number, else with the lowest one). All of them are
  prepared first (records acknowledged, offsets added) and committed only if every
  one prepared, so a fenced partition writes nothing. Atomicity is per partition.
* A rebalance suspends commits until it settles. A partition the member keeps
  across two consecutive group generations keeps its producer and its position
  and is not reported; any other is reported as ``assigned`` (and ``revoked`` if
  the caller had it) and resumes at its committed offset.
* On compacted topics an empty value is written as a Kafka tombstone (null).

Only the asyncio backend of anyio can run it (aiokafka is asyncio-based).
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, NamedTuple, Self

import anyio

from chatcore.errors import (
    ChatcoreClosed,
    ChatcoreError,
    Fenced,
    InvalidRequest,
    NotFound,
    Unavailable,
)
from chatcore.log._base import ConsumerBatch, LogRecord, OutRecord, RecordPosition

try:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka import errors as kafka_errors
    from aiokafka.abc import ConsumerRebalanceListener
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.partitioner import murmur2
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("chatcore.log.kafka needs aiokafka: pip install 'chatcore[kafka]'") from exc

__all__ = ["KafkaLog", "KafkaLogConsumer"]

logger = logging.getLogger("chatcore.log.kafka")

# Errors that mean "a newer owner exists": a newer producer epoch, or a group
# generation this member is no longer part of.
_FENCING_ERRORS = (
    kafka_errors.ProducerFenced,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.CommitFailedError,
    kafka_errors.IllegalGenerationError,
    kafka_errors.UnknownMemberIdError,
    kafka_errors.RebalanceInProgressError,
)
# Topic creation refusals that are the caller's to fix, not the cluster's.
_REFUSED_TOPIC_ERRORS = (
    kafka_errors.InvalidPartitionsError,
    kafka_errors.InvalidReplicationFactorError,
    kafka_errors.InvalidTopicError,
    kafka_errors.PolicyViolationError,
    kafka_errors.InvalidConfigurationError,
)
_FENCED = (Fenced, *_FENCING_ERRORS)
_SETTLED_GROUP_STATES = frozenset({"Stable", "Empty", "Dead"})


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Raise Kafka, socket and timeout errors as chatcore errors."""
    try:
        yield
    except ChatcoreError:
        raise
    except _FENCING_ERRORS as exc:
        raise Fenced(f"kafka: {what}: {exc}") from exc
    except (kafka_errors.KafkaError, OSError) as exc:  # OSError includes TimeoutError
        raise Unavailable(f"kafka: {what}: {exc!r}") from exc


def _partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def _retrieve(future: Any) -> None:
    """Mark a send future's outcome as seen (nobody may await it after a timeout)."""
    if not future.cancelled():
        future.exception()


def _forget_transaction_error(producer: Any) -> None:
    """Mark a failed transaction's error as seen: aiokafka drops it unseen, asyncio reports it."""
    manager = getattr(producer, "_txn_manager", None)
    waiter = manager.wait_for_transaction_end() if manager is not None else None
    if waiter is not None and waiter.done() and not waiter.cancelled():
        waiter.exception()


async def _stop_quietly(client: Any, timeout_s: float) -> None:
    """Stop an aiokafka client, bounded and shielded; failures are only logged."""
    stop = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
    with anyio.CancelScope(shield=True), anyio.move_on_after(timeout_s):
        try:
            await stop()
        except Exception:
            logger.debug("stopping %r failed", client, exc_info=True)


class _TopicMeta(NamedTuple):
    partitions: int
    compacted: bool


class _Placed(NamedTuple):
    """An OutRecord with its partition chosen and its value encoded for Kafka."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None


class KafkaLog:
    """A :class:`~chatcore.log.PartitionedLog` on a Kafka cluster (2.4 or newer; tested on 4.1).

    ``bootstrap_servers`` is ``"host:port[,host:port...]"``. Options:

    * ``client_id``: the client name brokers log (``"chatcore"``).
    * ``group_prefix``: put before every consumer group name, so deployments or test
      runs sharing a cluster never share a group (``""``).
    * ``transactional_id_prefix``: put before every transactional id (``""``).
    * ``replication_factor``: of created topics; ``None`` uses the broker's
      ``default.replication.factor``.
    * ``request_timeout_ms``: bound of every call to the cluster; a call that takes
      longer raises :class:`~chatcore.errors.Unavailable` (30 000).
    * ``session_timeout_ms``: a member not heard of for this long leaves its group;
      the broker allows 6 000 and more by default (10 000).
    * ``heartbeat_interval_ms``: how often a member tells the group it lives, and so
      how soon it notices a rebalance (1 000).
    * ``rebalance_timeout_ms``: how long a rebalance waits for members to rejoin; it
      also bounds how long ``poll`` waits for one to settle (60 000); ``aclose`` waits
      for the group to settle at most the session timeout.
    * ``max_poll_interval_ms``: a member that does not poll for this long leaves its
      group (300 000).
    * ``transaction_timeout_ms``: the broker aborts a transaction left open this long
      by a crashed writer (60 000).
    * ``linger_ms``: how long producers wait to batch records (0).

    Clients connect on first use (or on ``__aenter__``). Topics are never created
    implicitly: a missing topic raises :class:`~chatcore.errors.NotFound`, even on a
    broker with ``auto.create.topics.enable``.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "chatcore",
        group_prefix: str = "",
        transactional_id_prefix: str = "",
        replication_factor: int | None = None,
        request_timeout_ms: int = 30_000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1_000,
        rebalance_timeout_ms: int = 60_000,
        max_poll_interval_ms: int = 300_000,
        transaction_timeout_ms: int = 60_000,
        linger_ms: int = 0,
    ) -> None:
        """Raises :class:`~chatcore.errors.InvalidRequest` for inconsistent options."""
        if heartbeat_interval_ms >= session_timeout_ms:
            raise InvalidRequest("heartbeat_interval_ms must be below session_timeout_ms")
        if replication_factor is not None and replication_factor < 1:
            raise InvalidRequest("replication_factor must be at least 1 (or None)")
        self._client_options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "request_timeout_ms": request_timeout_ms,
        }
        self._group_prefix = group_prefix
        self._transactional_id_prefix = transactional_id_prefix
        self._replication_factor = replication_factor
        self._group_options: dict[str, Any] = {
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "rebalance_timeout_ms": rebalance_timeout_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
        }
        self._producer_options: dict[str, Any] = {
            "transaction_timeout_ms": transaction_timeout_ms,
            "linger_ms": linger_ms,
        }
        self._timeout_s = request_timeout_ms / 1000
        self._rebalance_timeout_s = rebalance_timeout_ms / 1000
        self._handoff_timeout_s = min(rebalance_timeout_ms, session_timeout_ms) / 1000
        self._start_lock = anyio.Lock()
        self._admin: Any = None
        self._producer: Any = None
        self._offsets_reader: Any = None
        self._meta: dict[str, _TopicMeta] = {}
        self._consumers: set[KafkaLogConsumer] = set()
        # Offsets our transactions committed that the group may not show yet: the
        # broker applies them when the commit markers land, just after EndTxn.
        self._unseen_offsets: dict[tuple[str, str, int], int] = {}
        self._closed = False

    async def __aenter__(self) -> Self:
        """Connect; raises :class:`~chatcore.errors.Unavailable` if the cluster is out of reach."""
        await self._admin_client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every consumer of this log and every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for consumer in list(self._consumers):
            await consumer._close(handoff=False)
        for client in (self._producer, self._offsets_reader, self._admin):
            if client is not None:
                await _stop_quietly(client, self._timeout_s)
        self._producer = self._offsets_reader = self._admin = None

    def transactional_id(self, group: str, topic: str, partition: int) -> str:
        """The ``transactional.id`` that writes for one input partition of a group.

        Grant it (or its prefix) in ACLs; a new owner of the partition reuses it,
        which is what fences the old one.
        """
        return f"{self._transactional_id_prefix}{self._group_id(group)}-{topic}-{partition}"

    # -- topics -----------------------------------------------------------------

    async def create_topic(self, topic: str, *, partitions: int, compacted: bool = False) -> None:
        """Create ``topic`` (``cleanup.policy=compact`` if ``compacted``) unless it exists.

        Returns when every partition has a leader. Raises
        :class:`~chatcore.errors.InvalidRequest` if it exists with another partition
        count or the cluster refuses it, :class:`~chatcore.errors.Unavailable` when
        the cluster cannot be reached.
        """
        if partitions < 1:
            raise InvalidRequest(f"a topic needs at least one partition, got {partitions}")
        admin = await self._admin_client()
        configs = {"cleanup.policy": "compact"} if compacted else {}
        new = NewTopic(topic, partitions, self._replication_factor or 1, topic_configs=configs)
        if self._replication_factor is None:
            new.replication_factor = -1  # the broker's default; NewTopic refuses it up front
        with _mapped(f"create topic {topic!r}"), anyio.fail_after(self._timeout_s):
            response = await admin.create_topics([new])
        (result,) = response.to_object()["topic_errors"]
        error = kafka_errors.for_code(result["error_code"])
        if error is kafka_errors.TopicAlreadyExistsError:
            self._meta.pop(topic, None)
            existing = await self._topic(topic)
            if existing.partitions != partitions:
                raise InvalidRequest(
                    f"topic {topic!r} exists with {existing.partitions} partitions, "
                    f"not {partitions}"
                )
            return
        if error in _REFUSED_TOPIC_ERRORS:
            raise InvalidRequest(f"kafka refused topic {topic!r}: {result.get('error_message')}")
        if error is not kafka_errors.NoError:
            raise Unavailable(f"kafka: create topic {topic!r}: {error.__name__}")
        await self._await_leaders(topic, partitions)
        self._meta[topic] = _TopicMeta(partitions, compacted)

    async def partition_count(self, topic: str) -> int:
        """The number of partitions of ``topic``; :class:`~chatcore.errors.NotFound` if none."""
        return (await self._topic(topic)).partitions

    async def _topic(self, topic: str) -> _TopicMeta:
        self._check_open()
        meta = self._meta.get(topic)
        if meta is None:
            meta = self._meta[topic] = await self._describe(topic)
        return meta

    async def _describe(self, topic: str) -> _TopicMeta:
        # DescribeConfigs first: unlike aiokafka's metadata requests it can never make
        # a broker with auto.create.topics.enable create the topic we ask about.
        admin = await self._admin_client()
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})
        with _mapped(f"describe topic {topic!r}"), anyio.fail_after(self._timeout_s):
            (configs,) = await admin.describe_configs([resource])
            (found,) = configs.to_object()["resources"]
            error = kafka_errors.for_code(found["error_code"])
            if error in (kafka_errors.UnknownTopicOrPartitionError, kafka_errors.InvalidTopicError):
                raise NotFound(f"no topic {topic!r}; create it with create_topic()")
            if error is not kafka_errors.NoError:
                raise error(found["error_message"])
            policy = next(
                (
                    str(e["config_value"])
                    for e in found["config_entries"]
                    if e["config_names"] == "cleanup.policy"
                ),
                "delete",
            )
            (info,) = await admin.describe_topics([topic])
        if info["error_code"] != 0 or not info["partitions"]:
            raise NotFound(f"no topic {topic!r}; create it with create_topic()")
        return _TopicMeta(len(info["partitions"]), "compact" in policy.split(","))

    async def _await_leaders(self, topic: str, partitions: int) -> None:
        admin = await self._admin_client()
        with _mapped(f"wait for the leaders of {topic!r}"), anyio.fail_after(self._timeout_s):
            while True:
                (info,) = await admin.describe_topics([topic])
                found = info["partitions"]
                if len(found) == partitions and all(p["leader"] >= 0 for p in found):
                    return
                await anyio.sleep(0.05)

    async def _placed(self, records: Sequence[OutRecord]) -> list[_Placed]:
        placed = []
        for r in records:
            meta = await self._topic(r.topic)
            key = r.key.encode()
            p = _partition_for(key, meta.partitions) if r.partition is None else r.partition
            if not 0 <= p < meta.partitions:
                raise InvalidRequest(f"topic {r.topic!r} has no partition {p}")
            value = None if meta.compacted and not r.value else r.value
            placed.append(_Placed(r.topic, p, key, value))
        return placed

    # -- writing and reading ------------------------------------------------------

    async def append(self, records: Sequence[OutRecord]) -> list[RecordPosition]:
        """Append records durably (acknowledged by all in-sync replicas), in order.

        Raises :class:`~chatcore.errors.NotFound` for a missing topic,
        :class:`~chatcore.errors.InvalidRequest` for a missing partition and
        :class:`~chatcore.errors.Unavailable` when the cluster does not acknowledge
        them within ``request_timeout_ms`` (some may still be appended).
        """
        self._check_open()
        if not records:
            return []
        placed = await self._placed(records)
        producer = await self._append_producer()
        with _mapped("append"), anyio.fail_after(self._timeout_s):
            sent = []
            for r in placed:
                future = await producer.send(r.topic, r.value, key=r.key, partition=r.partition)
                future.add_done_callback(_retrieve)
                sent.append(future)
            acked = [await future for future in sent]
        return [RecordPosition(int(m.partition), int(m.offset)) for m in acked]

    def consumer(self, topic: str, *, group: str) -> KafkaLogConsumer:
        """A new member of ``group`` reading ``topic`` (joins on ``__aenter__``)."""
        self._check_open()
        return KafkaLogConsumer(self, topic, group)

    async def read_compacted(self, topic: str, partition: int) -> dict[str, bytes]:
        """The latest value of every live key of one partition of a compacted topic.

        Reads committed records up to the last stable offset. Raises
        :class:`~chatcore.errors.InvalidRequest` if ``topic`` is not compacted or has
        no such partition, :class:`~chatcore.errors.Unavailable` on a stalled read.
        """
        meta = await self._topic(topic)
        if not meta.compacted:
            raise InvalidRequest(f"topic {topic!r} is not compacted")
        if not 0 <= partition < meta.partitions:
            raise InvalidRequest(f"topic {topic!r} has no partition {partition}")
        tp = TopicPartition(topic, partition)
        reader = AIOKafkaConsumer(
            **self._client_options,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        state: dict[str, bytes] = {}
        try:
            with _mapped(f"read compacted {topic!r}/{partition}"):
                await self._start(reader)
                reader.assign([tp])
                with anyio.fail_after(self._timeout_s):
                    end = int((await reader.end_offsets([tp]))[tp])
                    reader.seek(tp, 0)
                while await reader.position(tp) < end:
                    with anyio.fail_after(self._timeout_s):  # progress, not total time
                        batch = await reader.getmany(tp, timeout_ms=1000, max_records=10_000)
                    for m in batch.get(tp, ()):
                        if m.offset >= end:
                            break
                        key = m.key.decode() if m.key is not None else ""
                        if m.value:
                            state[key] = m.value
                        else:  # a tombstone (null) or an empty value deletes the key
                            state.pop(key, None)
        finally:
            await _stop_quietly(reader, self._timeout_s)
        return state

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next appended record will get (the high watermark).

        Transaction markers take offsets too, so on topics written by transactions
        this is not a count of records. Raises :class:`~chatcore.errors.NotFound`
        or :class:`~chatcore.errors.Unavailable`.
        """
        meta = await self._topic(topic)
        reader = await self._reader()
        tps = [TopicPartition(topic, p) for p in range(meta.partitions)]
        with _mapped(f"end offsets of {topic!r}"), anyio.fail_after(self._timeout_s):
            ends = await reader.end_offsets(tps)
        return {tp.partition: int(ends[tp]) for tp in tps}

    async def committed(self, topic: str, *, group: str) -> dict[int, int]:
        """Per partition, the committed offset of ``group`` (0 where none).

        Raises :class:`~chatcore.errors.NotFound` or :class:`~chatcore.errors.Unavailable`.
        """
        meta = await self._topic(topic)
        return await self._group_offsets(self._group_id(group), topic, range(meta.partitions))

    async def _group_offsets(
        self, group_id: str, topic: str, partitions: Iterable[int]
    ) -> dict[int, int]:
        """Committed offsets, including those of this log's own finished transactions."""
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return {}
        admin = await self._admin_client()
        with _mapped(f"offsets of group {group_id!r}"), anyio.fail_after(self._timeout_s):
            while True:
                found = await admin.list_consumer_group_offsets(group_id, partitions=tps)
                offsets = {tp.partition: int(found[tp].offset) if tp in found else -1 for tp in tps}
                behind = False
                for p, offset in offsets.items():
                    key = (group_id, topic, p)
                    if offset < self._unseen_offsets.get(key, -1):
                        behind = True
                    else:
                        self._unseen_offsets.pop(key, None)
                if not behind:
                    return {p: max(offset, 0) for p, offset in offsets.items()}
                await anyio.sleep(0.01)

    def _committed_by_transaction(
        self, group_id: str, topic: str, offsets: Mapping[int, int]
    ) -> None:
        for p, offset in offsets.items():
            self._unseen_offsets[(group_id, topic, p)] = offset

    def _committed_directly(self, group_id: str, topic: str, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._unseen_offsets.pop((group_id, topic, p), None)

    async def _await_handoff(self, group_id: str) -> None:
        """Wait until ``group_id`` has settled after a member left (best effort, bounded
        by the session timeout so a shutdown never hangs on a group that is rejoining)."""
        with anyio.move_on_after(self._handoff_timeout_s):
            try:
                admin = await self._admin_client()
                while True:
                    (response,) = await admin.describe_consumer_groups([group_id])
                    (group,) = response.to_object()["groups"]
                    if group["state"] in _SETTLED_GROUP_STATES:
                        return
                    await anyio.sleep(0.05)
            except (ChatcoreError, kafka_errors.KafkaError, OSError):
                logger.debug("could not watch group %r settle", group_id, exc_info=True)

    # -- clients ------------------------------------------------------------------

    def _group_id(self, group: str) -> str:
        return f"{self._group_prefix}{group}"

    def _check_open(self) -> None:
        if self._closed:
            raise ChatcoreClosed("the log is closed")

    async def _start(self, client: Any) -> Any:
        """Start an aiokafka client within the request timeout; stop it if that fails."""
        try:
            with _mapped("connect"), anyio.fail_after(self._timeout_s):
                await client.start()
        except BaseException:
            await _stop_quietly(client, self._timeout_s)
            raise
        return client

    async def _lazily(self, attr: str, make: Callable[[], Any]) -> Any:
        self._check_open()
        client = getattr(self, attr)
        if client is None:
            async with self._start_lock:
                client = getattr(self, attr)
                if client is None:
                    client = await self._start(make())
                    if self._closed:
                        await _stop_quietly(client, self._timeout_s)
                        self._check_open()
                    setattr(self, attr, client)
        return client

    async def _admin_client(self) -> Any:
        return await self._lazily("_admin", lambda: AIOKafkaAdminClient(**self._client_options))

    async def _append_producer(self) -> Any:
        return await self._lazily(
            "_producer",
            lambda: AIOKafkaProducer(
                **self._client_options,
                enable_idempotence=True,
                acks="all",
                linger_ms=self._producer_options["linger_ms"],
            ),
        )

    async def _reader(self) -> Any:
        return await self._lazily(
            "_offsets_reader",
            lambda: AIOKafkaConsumer(**self._client_options, enable_auto_commit=False),
        )

    def _transactional_producer(self, group: str, topic: str, partition: int) -> Any:
        return AIOKafkaProducer(
            **self._client_options,
            **self._producer_options,
            transactional_id=self.transactional_id(group, topic, partition),
        )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Forwards aiokafka's rebalance callbacks to the member."""

    def __init__(self, member: KafkaLogConsumer, consumer: Any) -> None:
        self._member = member
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self._member._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        await self._member._on_assigned(self._consumer, assigned)


def _generation_of(consumer: Any) -> int | None:
    """The group generation the member last joined (aiokafka keeps it private)."""
    generation = getattr(getattr(consumer, "_coordinator", None), "generation", None)
    return generation if isinstance(generation, int) and generation > 0 else None


class KafkaLogConsumer:
    """A member of a Kafka consumer group on one topic of a :class:`KafkaLog`.

    ``__aenter__`` returns once the member has joined and holds its first
    assignment; ``aclose`` leaves the group and waits (up to
    ``rebalance_timeout_ms``) until the group has settled without it.
    """

    def __init__(self, log: KafkaLog, topic: str, group: str) -> None:
        self._log = log
        self._topic = topic
        self._group = group
        self._group_id = log._group_id(group)
        self._consumer: Any = None
        self._producers: dict[int, Any] = {}
        self._current: frozenset[int] = frozenset()  # assigned as of the last rebalance
        self._visible: frozenset[int] = frozenset()  # as the caller knows it (last poll)
        self._owned: set[int] = set()  # may be committed now
        self._suspended: set[int] = set()  # owned when the rebalance in progress began
        self._fresh: set[int] = set()  # (re)started since the last poll: caller restores
        self._lost: set[int] = set()  # producer fenced or broken: no more writes
        self._positions: dict[int, int] = {}  # next offset to hand out, per partition
        self._generation: int | None = None
        self._rounds = 0  # rebalances completed
        self._rebalancing = False
        self._settled = anyio.Event()
        self._write_lock = anyio.Lock()
        self._failure: Exception | None = None

    async def __aenter__(self) -> Self:
        """Join the group; returns once this member holds its first assignment.

        Raises :class:`~chatcore.errors.NotFound` for a missing topic,
        :class:`~chatcore.errors.InvalidRequest` for a compacted one or a member
        already in its group, :class:`~chatcore.errors.Unavailable` if joining fails.
        """
        if self._consumer is not None:
            raise InvalidRequest("this consumer is already in its group")
        log = self._log
        meta = await log._topic(self._topic)
        if meta.compacted:
            raise InvalidRequest(f"topic {self._topic!r} is compacted: use read_compacted()")
        consumer = AIOKafkaConsumer(
            **log._client_options,
            **log._group_options,
            group_id=self._group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        consumer.subscribe([self._topic], listener=_Rebalance(self, consumer))
        self._consumer = consumer
        log._consumers.add(self)
        try:
            await log._start(consumer)
            await self._wait_settled()
        except BaseException:
            await self._close(handoff=False)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Leave the group and wait until its partitions have moved. Idempotent."""
        await self._close(handoff=True)

    async def _close(self, *, handoff: bool) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        log = self._log
        log._consumers.discard(self)
        await _stop_quietly(consumer, log._timeout_s)  # sends LeaveGroup
        producers, self._producers = self._producers, {}
        for producer in producers.values():
            await _stop_quietly(producer, log._timeout_s)
        self._owned.clear()
        self._notify_settled()
        if handoff and not log._closed:
            with anyio.CancelScope(shield=True):
                await log._await_handoff(self._group_id)

    @property
    def assignment(self) -> frozenset[int]:
        """The partitions this member owns as of its last poll."""
        return self._visible

    async def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> ConsumerBatch:
        """Return the next records of owned partitions, waiting up to ``timeout_s`` for some.

        A rebalance in progress is waited for first (the member owns nothing
        meanwhile), up to ``rebalance_timeout_ms``. Raises
        :class:`~chatcore.errors.Unavailable` when the cluster is down or the member
        could not take over a partition, :class:`~chatcore.errors.ChatcoreClosed`
        outside ``async with``.
        """
        if max_records < 1:
            raise InvalidRequest("max_records must be at least 1")
        consumer = self._joined()
        await self._wait_settled()
        changed = self._current != self._visible or bool(self._fresh)
        with _mapped(f"poll {self._topic!r}"):
            batches = await consumer.getmany(
                timeout_ms=0 if changed else int(timeout_s * 1000), max_records=max_records
            )
        # Records come from the assignment in force when they were drained, so a
        # rebalance that began while we waited left nothing to drop.
        await self._wait_settled()
        assigned, revoked = self._take_changes()
        records: list[LogRecord] = []
        for tp, messages in batches.items():
            if not messages or tp.partition not in self._visible:
                continue
            records.extend(
                LogRecord(
                    tp.topic,
                    tp.partition,
                    m.offset,
                    m.key.decode() if m.key is not None else "",
                    m.value if m.value is not None else b"",
                    m.timestamp,
                )
                for m in messages
            )
            self._positions[tp.partition] = int(messages[-1].offset) + 1
        return ConsumerBatch(records, assigned, revoked)

    async def commit(self, offsets: Mapping[int, int]) -> None:
        """Commit, per partition, the offset of the next record to read.

        Raises :class:`~chatcore.errors.Fenced` if a partition is no longer owned,
        :class:`~chatcore.errors.Unavailable` on cluster failure.
        """
        consumer = self._joined()
        if not offsets:
            return
        commit = {TopicPartition(self._topic, p): o for p, o in offsets.items()}
        async with self._writable(set(offsets)):
            with (
                _mapped(f"commit offsets of {self._group!r}"),
                anyio.fail_after(self._log._timeout_s),
            ):
                try:
                    await consumer.commit(commit)
                except kafka_errors.IllegalStateError as exc:  # not assigned any more
                    raise Fenced(f"member of {self._group!r} lost {sorted(offsets)}") from exc
        self._log._committed_directly(self._group_id, self._topic, offsets)

    async def commit_transaction(
        self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]
    ) -> list[RecordPosition]:
        """Append ``outputs`` and commit ``offsets``: one Kafka transaction per input partition.

        Each input partition's transaction holds its offset and its outputs; all are
        committed only if all prepared. Raises :class:`~chatcore.errors.Fenced` if a
        partition is no longer owned (nothing is written),
        :class:`~chatcore.errors.Unavailable` on cluster failure (a failure between
        two partitions' commits can leave one committed), and
        :class:`~chatcore.errors.NotFound` / :class:`~chatcore.errors.InvalidRequest`
        for bad outputs.
        """
        self._joined()
        placed = await self._log._placed(outputs)
        if not placed and not offsets:
            return []
        async with self._writable(set(offsets)):
            inputs = sorted(offsets) or sorted(self._owned)[:1]
            if not inputs:
                raise Fenced(f"member of {self._group!r} owns no partition to write with")
            shares: dict[int, list[int]] = {p: [] for p in inputs}
            for i, r in enumerate(placed):
                shares[r.partition if r.partition in shares else inputs[0]].append(i)
            plan = {p: ([placed[i] for i in shares[p]], offsets.get(p)) for p in inputs}
            results = await self._transact(plan)
        positions: list[RecordPosition | None] = [None] * len(placed)
        for p, indexes in shares.items():
            for i, position in zip(indexes, results[p], strict=True):
                positions[i] = position
        return [p for p in positions if p is not None]

    # -- transactions ---------------------------------------------------------------

    async def _transact(
        self, plan: dict[int, tuple[list[_Placed], int | None]]
    ) -> dict[int, list[RecordPosition]]:
        """Prepare every partition's transaction, then commit them all or abort them all."""
        results: dict[int, list[RecordPosition]] = {}

        async def prepare(p: int) -> None:
            records, offset = plan[p]
            results[p] = await self._prepare(p, records, offset)

        async def commit(p: int) -> None:
            await self._producers[p].commit_transaction()

        async def abort(p: int) -> None:
            _forget_transaction_error(self._producers[p])
            await self._producers[p].abort_transaction()

        with anyio.CancelScope(shield=True):  # a torn transaction would wedge its producer
            failures = await self._each(plan, prepare)
            if not failures:
                failures = await self._each(plan, commit)
                lose = set(failures)  # a commit with an unknown outcome
                done = {p: o for p, (_, o) in plan.items() if o is not None and p not in lose}
                self._log._committed_by_transaction(self._group_id, self._topic, done)
            else:
                fenced = {p for p, e in failures.items() if isinstance(e, _FENCED)}
                lose = fenced | set(await self._each(set(plan) - fenced, abort))
            for p in lose:
                await self._lose(p)
        if failures:
            p, cause = min(failures.items(), key=lambda f: (not isinstance(f[1], _FENCED), f[0]))
            what = f"kafka: transaction for partition {p} of {self._topic!r}"
            if isinstance(cause, ChatcoreError):
                raise cause
            if isinstance(cause, _FENCED):
                raise Fenced(f"{what}: {cause}") from cause
            raise Unavailable(f"{what}: {cause!r}") from cause
        return results

    async def _prepare(
        self, partition: int, records: list[_Placed], offset: int | None
    ) -> list[RecordPosition]:
        producer = self._producers.get(partition)
        if producer is None:
            raise Fenced(f"member of {self._group!r} cannot write for partition {partition}")
        await producer.begin_transaction()
        if offset is not None:  # first: a fenced producer then fails before holding records
            tp = TopicPartition(self._topic, partition)
            await producer.send_offsets_to_transaction({tp: offset}, self._group_id)
        sent = []
        for r in records:
            future = await producer.send(r.topic, r.value, key=r.key, partition=r.partition)
            future.add_done_callback(_retrieve)
            sent.append(future)
        acked = [await future for future in sent]
        return [RecordPosition(int(m.partition), int(m.offset)) for m in acked]

    async def _each(
        self, partitions: Iterable[int], step: Callable[[int], Awaitable[None]]
    ) -> dict[int, Exception]:
        """Run ``step`` for every partition concurrently, each within the request timeout."""
        failures: dict[int, Exception] = {}

        async def run(p: int) -> None:
            try:
                with anyio.fail_after(self._log._timeout_s):
                    await step(p)
            except Exception as exc:
                failures[p] = exc

        async with anyio.create_task_group() as tg:
            for p in partitions:
                tg.start_soon(run, p)
        return failures

    async def _lose(self, partition: int) -> None:
        """Stop writing for ``partition`` until it is assigned afresh."""
        self._owned.discard(partition)
        self._lost.add(partition)
        producer = self._producers.pop(partition, None)
        if producer is not None:
            _forget_transaction_error(producer)
            await _stop_quietly(producer, self._log._timeout_s)

    # -- group membership -----------------------------------------------------------

    def _joined(self) -> Any:
        self._log._check_open()
        if self._consumer is None:
            raise ChatcoreClosed("consumer is not in its group (use it with `async with`)")
        return self._consumer

    @asynccontextmanager
    async def _writable(self, partitions: set[int]) -> AsyncIterator[None]:
        """Hold the write lock while this member owns ``partitions``; else raise Fenced."""
        while True:
            await self._wait_settled()
            async with self._write_lock:
                if self._rebalancing:
                    continue  # one began while we waited for the lock
                lost = partitions - self._owned
                if lost:
                    raise Fenced(f"member of {self._group!r} no longer owns {sorted(lost)}")
                yield
                return

    async def _wait_settled(self) -> None:
        """Wait for the first assignment and for any rebalance in progress."""
        with _mapped(f"rebalance of {self._group!r}"):
            with anyio.fail_after(self._log._rebalance_timeout_s + self._log._timeout_s):
                while self._consumer is not None and (self._rebalancing or not self._rounds):
                    await self._settled.wait()
        if self._failure is not None:
            raise Unavailable(
                f"kafka: member of {self._group!r} could not take over its partitions: "
                f"{self._failure!r}"
            ) from self._failure
        self._joined()

    def _notify_settled(self) -> None:
        self._settled.set()
        self._settled = anyio.Event()

    def _take_changes(self) -> tuple[frozenset[int], frozenset[int]]:
        now, before, fresh = self._current, self._visible, self._fresh
        assigned = (now - before) | (fresh & now)
        revoked = (before - now) | (fresh & before)
        self._visible, self._fresh = now, set()
        self._owned = set(now) - self._lost
        return frozenset(assigned), frozenset(revoked)

    async def _on_revoked(self, revoked: set[Any]) -> None:
        self._rebalancing = True
        async with self._write_lock:  # an in-flight transaction or commit ends first
            gone = {tp.partition for tp in revoked if tp.topic == self._topic}
            self._suspended |= self._owned & gone
            self._owned -= gone

    async def _on_assigned(self, consumer: Any, assigned: set[Any]) -> None:
        tps = [tp for tp in assigned if tp.topic == self._topic]
        consumer.pause(*tps)  # nothing is fetched before its position is settled below
        try:
            mine = frozenset(tp.partition for tp in tps)
            generation = _generation_of(consumer)
            consecutive = (
                generation is not None
                and self._generation is not None
                and generation == self._generation + 1
            )
            kept = (
                {p for p in mine & self._current if p in self._producers} if consecutive else set()
            )
            fresh = mine - kept
            for p in [p for p in self._producers if p not in kept]:
                await _stop_quietly(self._producers.pop(p), self._log._timeout_s)
            await self._start_producers(fresh)  # fences the previous owners' producers
            committed = await self._log._group_offsets(self._group_id, self._topic, fresh)
            self._positions = {p: self._positions[p] for p in kept} | committed
            for tp in tps:
                consumer.seek(tp, self._positions[tp.partition])
            self._lost -= fresh
            self._fresh |= fresh
            self._owned |= self._suspended & kept
            self._current = mine
            self._generation = generation
        except Exception as exc:
            logger.warning("member of %r failed to take %s", self._group_id, tps, exc_info=True)
            self._failure = exc
        finally:
            self._suspended = set()
            consumer.resume(*tps)
            self._rebalancing = False
            self._rounds += 1
            self._notify_settled()

    async def _start_producers(self, partitions: Iterable[int]) -> None:
        log = self._log
        failures: list[Exception] = []

        async def start(p: int) -> None:
            try:
                producer = log._transactional_producer(self._group, self._topic, p)
                self._producers[p] = await log._start(producer)
            except Exception as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for p in partitions:
                tg.start_soon(start, p)
        if failures:
            raise failures[0]
