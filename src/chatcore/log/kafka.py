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

Layout: this module holds the log (topics, appends, reads, offsets);
``_kafka_consumer`` the group member, ``_kafka_transactions`` the transactions of
its ``commit_transaction``; ``_kafka_cluster`` the state the log and its members
share (clients, names, topic metadata, offsets in flight) and ``_kafka_client`` the
aiokafka clients and helpers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

import anyio

from chatcore._resource import ClosingContext
from chatcore.errors import InvalidRequest, Unavailable
from chatcore.log._base import OutRecord, RecordPosition
from chatcore.log._kafka_client import (
    REFUSED_TOPIC_ERRORS,
    NewTopic,
    TopicMeta,
    TopicPartition,
    kafka_errors,
    mapped,
    send_all,
    stop_quietly,
)
from chatcore.log._kafka_cluster import KafkaCluster
from chatcore.log._kafka_consumer import KafkaLogConsumer

__all__ = ["KafkaLog", "KafkaLogConsumer"]

_MAX_REQUEST_BYTES = 1024 * 1024  # aiokafka's default max_request_size


class KafkaLog(ClosingContext):
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
    * ``transaction_retry_backoff_ms``: how long a transactional producer waits before
      retrying a step the broker refused for now (10). Right after a commit, the next
      transaction's first step is refused until the commit markers are written
      (``CONCURRENT_TRANSACTIONS``); aiokafka's default of 100 ms added up to 100 ms
      to a tenth or more of back-to-back transactions.
    * ``max_batch_bytes``: the most bytes of records a producer sends to one
      partition in one request (512 KiB; 1 KiB to 1 MiB, and at most the broker's
      ``message.max.bytes``). A producer has one request in flight per broker, so
      aiokafka's default of 16 KiB made a transaction of a few hundred records take
      one produce round trip per 16 KiB.

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
        transaction_retry_backoff_ms: int = 10,
        max_batch_bytes: int = 512 * 1024,
    ) -> None:
        """Raises :class:`~chatcore.errors.InvalidRequest` for inconsistent options."""
        if heartbeat_interval_ms >= session_timeout_ms:
            raise InvalidRequest("heartbeat_interval_ms must be below session_timeout_ms")
        if transaction_retry_backoff_ms < 1:
            raise InvalidRequest("transaction_retry_backoff_ms must be at least 1")
        if not 1024 <= max_batch_bytes <= _MAX_REQUEST_BYTES:
            raise InvalidRequest(
                f"max_batch_bytes must be 1024 to {_MAX_REQUEST_BYTES}, got {max_batch_bytes}"
            )
        if replication_factor is not None and replication_factor < 1:
            raise InvalidRequest("replication_factor must be at least 1 (or None)")
        self._replication_factor = replication_factor
        self._timeout_s = request_timeout_ms / 1000
        self._cluster = KafkaCluster(
            client_options={
                "bootstrap_servers": bootstrap_servers,
                "client_id": client_id,
                "request_timeout_ms": request_timeout_ms,
            },
            group_options={
                "session_timeout_ms": session_timeout_ms,
                "heartbeat_interval_ms": heartbeat_interval_ms,
                "rebalance_timeout_ms": rebalance_timeout_ms,
                "max_poll_interval_ms": max_poll_interval_ms,
            },
            producer_options={
                "transaction_timeout_ms": transaction_timeout_ms,
                "linger_ms": linger_ms,
                "max_batch_size": max_batch_bytes,
                "max_request_size": _MAX_REQUEST_BYTES,
            },
            transaction_options={"retry_backoff_ms": transaction_retry_backoff_ms},
            group_prefix=group_prefix,
            transactional_id_prefix=transactional_id_prefix,
            timeout_s=self._timeout_s,
            rebalance_timeout_s=rebalance_timeout_ms / 1000,
            handoff_timeout_s=min(rebalance_timeout_ms, session_timeout_ms) / 1000,
        )
        self._clients = self._cluster.clients

    async def __aenter__(self) -> Self:
        """Connect; raises :class:`~chatcore.errors.Unavailable` if the cluster is out of reach."""
        await self._clients.admin()
        return self

    async def aclose(self) -> None:
        """Close every consumer of this log and every connection. Idempotent."""
        await self._cluster.aclose()

    def transactional_id(self, group: str, topic: str, partition: int) -> str:
        """The ``transactional.id`` that writes for one input partition of a group.

        Grant it (or its prefix) in ACLs; a new owner of the partition reuses it,
        which is what fences the old one.
        """
        return self._cluster.transactional_id(group, topic, partition)

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
        admin = await self._clients.admin()
        configs = {"cleanup.policy": "compact"} if compacted else {}
        new = NewTopic(topic, partitions, self._replication_factor or 1, topic_configs=configs)
        if self._replication_factor is None:
            new.replication_factor = -1  # the broker's default; NewTopic refuses it up front
        with mapped(f"create topic {topic!r}"), anyio.fail_after(self._timeout_s):
            response = await admin.create_topics([new])
        (result,) = response.to_object()["topic_errors"]
        error = kafka_errors.for_code(result["error_code"])
        if error is kafka_errors.TopicAlreadyExistsError:
            existing = await self._cluster.topic(topic, refresh=True)
            if existing.partitions != partitions:
                raise InvalidRequest(
                    f"topic {topic!r} exists with {existing.partitions} partitions, "
                    f"not {partitions}"
                )
            return
        if error in REFUSED_TOPIC_ERRORS:
            raise InvalidRequest(f"kafka refused topic {topic!r}: {result.get('error_message')}")
        if error is not kafka_errors.NoError:
            raise Unavailable(f"kafka: create topic {topic!r}: {error.__name__}")
        await self._await_leaders(topic, partitions)
        self._cluster.created(topic, TopicMeta(partitions, compacted))

    async def partition_count(self, topic: str) -> int:
        """The number of partitions of ``topic``; :class:`~chatcore.errors.NotFound` if none."""
        return (await self._cluster.topic(topic)).partitions

    async def _await_leaders(self, topic: str, partitions: int) -> None:
        admin = await self._clients.admin()
        with mapped(f"wait for the leaders of {topic!r}"), anyio.fail_after(self._timeout_s):
            while True:
                (info,) = await admin.describe_topics([topic])
                found = info["partitions"]
                if len(found) == partitions and all(p["leader"] >= 0 for p in found):
                    return
                await anyio.sleep(0.05)

    # -- writing and reading ------------------------------------------------------

    async def append(self, records: Sequence[OutRecord]) -> list[RecordPosition]:
        """Append records durably (acknowledged by all in-sync replicas), in order.

        Raises :class:`~chatcore.errors.NotFound` for a missing topic,
        :class:`~chatcore.errors.InvalidRequest` for a missing partition and
        :class:`~chatcore.errors.Unavailable` when the cluster does not acknowledge
        them within ``request_timeout_ms`` (some may still be appended).
        """
        self._cluster.check_open()
        if not records:
            return []
        placed = await self._cluster.placed(records)
        producer = await self._clients.producer()
        with mapped("append"), anyio.fail_after(self._timeout_s):
            return await send_all(producer, placed)

    def consumer(self, topic: str, *, group: str) -> KafkaLogConsumer:
        """A new member of ``group`` reading ``topic`` (joins on ``__aenter__``)."""
        self._cluster.check_open()
        return KafkaLogConsumer(self._cluster, topic, group)

    async def read_compacted(self, topic: str, partition: int) -> dict[str, bytes]:
        """The latest value of every live key of one partition of a compacted topic.

        Reads committed records up to the last stable offset. Raises
        :class:`~chatcore.errors.InvalidRequest` if ``topic`` is not compacted or has
        no such partition, :class:`~chatcore.errors.Unavailable` on a stalled read.
        """
        meta = await self._cluster.topic(topic)
        if not meta.compacted:
            raise InvalidRequest(f"topic {topic!r} is not compacted")
        if not 0 <= partition < meta.partitions:
            raise InvalidRequest(f"topic {topic!r} has no partition {partition}")
        tp = TopicPartition(topic, partition)
        reader = self._clients.committed_reader()
        state: dict[str, bytes] = {}
        try:
            with mapped(f"read compacted {topic!r}/{partition}"):
                await self._clients.start(reader)
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
            await stop_quietly(reader, self._timeout_s)
        return state

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next appended record will get (the high watermark).

        Transaction markers take offsets too, so on topics written by transactions
        this is not a count of records. Raises :class:`~chatcore.errors.NotFound`
        or :class:`~chatcore.errors.Unavailable`.
        """
        meta = await self._cluster.topic(topic)
        reader = await self._clients.offsets_reader()
        tps = [TopicPartition(topic, p) for p in range(meta.partitions)]
        with mapped(f"end offsets of {topic!r}"), anyio.fail_after(self._timeout_s):
            ends = await reader.end_offsets(tps)
        return {tp.partition: int(ends[tp]) for tp in tps}

    async def committed(self, topic: str, *, group: str) -> dict[int, int]:
        """Per partition, the committed offset of ``group`` (0 where none).

        Raises :class:`~chatcore.errors.NotFound` or :class:`~chatcore.errors.Unavailable`.
        """
        meta = await self._cluster.topic(topic)
        group_id = self._cluster.group_id(group)
        return await self._cluster.group_offsets(group_id, topic, range(meta.partitions))

    async def backlog(
        self, topic: str, *, group: str, ends: Mapping[int, int] | None = None
    ) -> dict[int, int]:
        """Per partition, how far ``group``'s committed offset is behind ``ends``.

        ``ends`` defaults to the end offsets now. Where the committed offset is below
        the end, the partition is read from it (``read_committed``): if only
        transaction markers lie before the end, it counts 0. Raises
        :class:`~chatcore.errors.NotFound` or :class:`~chatcore.errors.Unavailable`.
        """
        if ends is None:
            ends = await self.end_offsets(topic)
        done = await self.committed(topic, group=group)
        behind = {p: ends.get(p, 0) - offset for p, offset in done.items()}
        starts = {p: done[p] for p, n in behind.items() if n > 0}
        for p in await self._only_markers(topic, starts, ends):
            behind[p] = 0
        return {p: max(n, 0) for p, n in behind.items()}

    async def _only_markers(
        self, topic: str, starts: Mapping[int, int], ends: Mapping[int, int]
    ) -> set[int]:
        """The partitions with no committed record between ``starts`` and ``ends``.

        A partition whose reading stops short of its end (an open transaction) is
        not one of them.
        """
        if not starts:
            return set()
        tps = {TopicPartition(topic, p): p for p in starts}
        reader = self._clients.committed_reader()
        undecided = dict(tps)
        markers: set[int] = set()
        try:
            with mapped(f"backlog of {topic!r}"):
                await self._cluster.clients.start(reader)
                reader.assign(list(tps))
                for tp, p in tps.items():
                    reader.seek(tp, starts[p])
                positions = dict(starts)
                stalled = 0
                while undecided and stalled < 3:  # a stalled read waits on a transaction
                    with anyio.fail_after(self._timeout_s):
                        batch = await reader.getmany(*undecided, timeout_ms=50)
                    stalled += 1
                    for tp, p in list(undecided.items()):
                        if any(m.offset < ends[p] for m in batch.get(tp, ())):
                            del undecided[tp]
                            continue
                        position = await reader.position(tp)
                        if position >= ends[p]:
                            markers.add(p)
                            del undecided[tp]
                        elif position > positions[p]:
                            positions[p], stalled = position, 0
        finally:
            await stop_quietly(reader, self._timeout_s)
        return markers
