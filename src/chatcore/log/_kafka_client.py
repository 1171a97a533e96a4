"""What the Kafka log and its consumers share: aiokafka imported, its errors mapped, the
clients that reach the cluster started and stopped, records placed and sent."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import anyio

from chatcore._extras import missing_extra
from chatcore.errors import ChatcoreClosed, ChatcoreError, Fenced, Unavailable
from chatcore.log._base import RecordPosition

try:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka import errors as kafka_errors
    from aiokafka.abc import ConsumerRebalanceListener
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.partitioner import murmur2
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("kafka", exc, needed_by="chatcore.log.kafka") from exc

__all__ = [
    # aiokafka, imported here once with the install hint
    "AIOKafkaAdminClient",
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "ConfigResource",
    "ConfigResourceType",
    "ConsumerRebalanceListener",
    "NewTopic",
    "TopicPartition",
    "kafka_errors",
    # shared by the log and its consumers
    "FENCED",
    "REFUSED_TOPIC_ERRORS",
    "KafkaClients",
    "Placed",
    "TopicMeta",
    "forget_transaction_error",
    "logger",
    "mapped",
    "partition_for",
    "send_all",
    "stop_quietly",
]

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
FENCED = (Fenced, *_FENCING_ERRORS)
# Topic creation refusals that are the caller's to fix, not the cluster's.
REFUSED_TOPIC_ERRORS = (
    kafka_errors.InvalidPartitionsError,
    kafka_errors.InvalidReplicationFactorError,
    kafka_errors.InvalidTopicError,
    kafka_errors.PolicyViolationError,
    kafka_errors.InvalidConfigurationError,
)

# Consumers that see only committed transactions, from the start of a partition
# without a committed offset, and commit offsets only when told to.
_READ_COMMITTED: dict[str, Any] = {
    "enable_auto_commit": False,
    "isolation_level": "read_committed",
    "auto_offset_reset": "earliest",
}


class TopicMeta(NamedTuple):
    """A topic's partition count and whether it is compacted."""

    partitions: int
    compacted: bool


class Placed(NamedTuple):
    """An OutRecord with its partition chosen and its value encoded for Kafka."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None


@contextmanager
def mapped(what: str) -> Iterator[None]:
    """Raise Kafka, socket and timeout errors as chatcore errors."""
    try:
        yield
    except ChatcoreError:
        raise
    except _FENCING_ERRORS as exc:
        raise Fenced(f"kafka: {what}: {exc}") from exc
    except (kafka_errors.KafkaError, OSError) as exc:  # OSError includes TimeoutError
        raise Unavailable(f"kafka: {what}: {exc!r}") from exc


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


async def send_all(producer: Any, records: Sequence[Placed]) -> list[RecordPosition]:
    """Send ``records`` in order and wait until every one is acknowledged; their positions."""
    sent = []
    for r in records:
        future = await producer.send(r.topic, r.value, key=r.key, partition=r.partition)
        future.add_done_callback(_retrieve)
        sent.append(future)
    acked = [await future for future in sent]
    return [RecordPosition(int(m.partition), int(m.offset)) for m in acked]


def _retrieve(future: Any) -> None:
    """Mark a send future's outcome as seen (nobody may await it after a timeout)."""
    if not future.cancelled():
        future.exception()


def forget_transaction_error(producer: Any) -> None:
    """Mark a failed transaction's error as seen: aiokafka drops it unseen, asyncio reports it."""
    manager = getattr(producer, "_txn_manager", None)
    waiter = manager.wait_for_transaction_end() if manager is not None else None
    if waiter is not None and waiter.done() and not waiter.cancelled():
        waiter.exception()


async def stop_quietly(client: Any, timeout_s: float) -> None:
    """Stop an aiokafka client, bounded and shielded; failures are only logged."""
    stop = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
    with anyio.CancelScope(shield=True), anyio.move_on_after(timeout_s):
        try:
            await stop()
        except Exception:
            logger.debug("stopping %r failed", client, exc_info=True)


class KafkaClients:
    """The log's way to the cluster: client options, and the clients its calls share.

    The shared clients (admin, idempotent producer, offsets reader) start on first
    use. ``check_open`` is the owner's: it raises ChatcoreClosed once the owner is
    closed, and a shared client that finished starting after that is stopped again.
    """

    def __init__(
        self,
        *,
        client_options: dict[str, Any],
        group_options: dict[str, Any],
        producer_options: dict[str, Any],
        transaction_options: dict[str, Any] | None = None,
        timeout_s: float,
        check_open: Callable[[], None],
    ) -> None:
        self._client_options = client_options
        self._group_options = group_options
        self._producer_options = producer_options
        self._transaction_options = transaction_options or {}
        self._timeout_s = timeout_s
        self._check_open = check_open
        self._start_lock = anyio.Lock()
        self._shared: dict[str, Any] = {}

    async def start(self, client: Any) -> Any:
        """Start an aiokafka client within the request timeout; stop it if that fails.

        Raises Unavailable (or Fenced) as :func:`mapped` does.
        """
        try:
            with mapped("connect"), anyio.fail_after(self._timeout_s):
                await client.start()
        except BaseException:
            await stop_quietly(client, self._timeout_s)
            raise
        return client

    async def admin(self) -> Any:
        """The shared admin client; raises ChatcoreClosed, Unavailable."""
        return await self._lazily("admin", lambda: AIOKafkaAdminClient(**self._client_options))

    async def producer(self) -> Any:
        """The shared idempotent producer (``acks=all``); raises ChatcoreClosed, Unavailable."""
        return await self._lazily(
            "producer",
            lambda: AIOKafkaProducer(
                **self._client_options,
                enable_idempotence=True,
                acks="all",
                linger_ms=self._producer_options["linger_ms"],
                max_batch_size=self._producer_options["max_batch_size"],
                max_request_size=self._producer_options["max_request_size"],
            ),
        )

    async def offsets_reader(self) -> Any:
        """The shared consumer that reads end offsets; raises ChatcoreClosed, Unavailable."""
        return await self._lazily(
            "offsets_reader",
            lambda: AIOKafkaConsumer(**self._client_options, enable_auto_commit=False),
        )

    def committed_reader(self) -> Any:
        """A new (not started) consumer, in no group, of committed records from the start."""
        return AIOKafkaConsumer(**self._client_options, **_READ_COMMITTED)

    def group_member(self, group_id: str) -> Any:
        """A new (not started) member of ``group_id`` reading committed records."""
        return AIOKafkaConsumer(
            **self._client_options, **self._group_options, **_READ_COMMITTED, group_id=group_id
        )

    def transactional_producer(self, transactional_id: str) -> Any:
        """A new (not started) producer with ``transactional_id``."""
        return AIOKafkaProducer(
            **self._client_options,
            **self._producer_options,
            **self._transaction_options,
            transactional_id=transactional_id,
        )

    async def aclose(self) -> None:
        """Stop the shared clients (bounded; failures are only logged)."""
        for name in ("producer", "offsets_reader", "admin"):
            client = self._shared.pop(name, None)
            if client is not None:
                await stop_quietly(client, self._timeout_s)

    async def _lazily(self, name: str, make: Callable[[], Any]) -> Any:
        self._check_open()
        client = self._shared.get(name)
        if client is None:
            async with self._start_lock:
                client = self._shared.get(name)
                if client is None:
                    client = await self.start(make())
                    try:
                        self._check_open()
                    except ChatcoreClosed:
                        await stop_quietly(client, self._timeout_s)
                        raise
                    self._shared[name] = client
        return client
