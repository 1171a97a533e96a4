"""What KafkaLog guarantees beyond the conformance suite, checked on the real broker.

Fencing of stale writers, ``read_committed`` reads, one transaction per input
partition, partitions kept through an eager rebalance, topics that are never
created behind the caller's back, and errors when the cluster is out of reach.
Other writers are plain aiokafka clients, as a second process would be.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import ProducerFenced

from chatcore.errors import ChatcoreClosed, Fenced, InvalidRequest, NotFound, Unavailable
from chatcore.log import LogConsumer, LogRecord, OutRecord
from chatcore.log.kafka import KafkaLog
from tests.services import KAFKA_BOOTSTRAP, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]

FAST_GROUPS: dict[str, Any] = {
    "request_timeout_ms": 10_000,
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 100,
    "rebalance_timeout_ms": 10_000,
}


@pytest.fixture
def prefix() -> str:
    require("kafka")
    return unique("it-")


@pytest.fixture
async def log(prefix: str) -> AsyncIterator[KafkaLog]:
    async with KafkaLog(KAFKA_BOOTSTRAP, group_prefix=prefix, **FAST_GROUPS) as log:
        yield log


@pytest.fixture
def topic(prefix: str) -> str:
    return f"{prefix}-in"


@asynccontextmanager
async def raw_producer(**options: Any) -> AsyncIterator[Any]:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, **options)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def poll_until(consumer: LogConsumer, want: int, *, timeout_s: float = 10) -> list[LogRecord]:
    got: list[LogRecord] = []
    with anyio.fail_after(timeout_s):
        while len(got) < want:
            got.extend((await consumer.poll(timeout_s=0.2)).records)
    return got


async def visible_records(log: KafkaLog, topic: str) -> list[LogRecord]:
    """What a read_committed reader sees in ``topic``, read up to a fresh end marker."""
    partitions = await log.partition_count(topic)
    await log.append([OutRecord(topic, "", b"<end>", partition=p) for p in range(partitions)])
    seen: list[LogRecord] = []
    ended = 0
    async with log.consumer(topic, group=unique("reader-")) as reader:
        with anyio.fail_after(10):
            while ended < partitions:
                for r in (await reader.poll(timeout_s=0.2)).records:
                    if r.value == b"<end>":
                        ended += 1
                    else:
                        seen.append(r)
    return seen


async def visible_values(log: KafkaLog, topic: str) -> list[bytes]:
    return [r.value for r in await visible_records(log, topic)]


# -- fencing ------------------------------------------------------------------------


async def test_a_zombie_member_is_fenced_by_the_new_owners_producer(
    log: KafkaLog, topic: str
) -> None:
    out = topic + ".out"
    await log.create_topic(topic, partitions=1)
    await log.create_topic(out, partitions=1)
    await log.append([OutRecord(topic, "k", b"in")])
    async with log.consumer(topic, group="seq") as zombie:
        (record,) = await poll_until(zombie, 1)
        # The partition's next owner starts its producer: same id, newer epoch.
        async with raw_producer(transactional_id=log.transactional_id("seq", topic, 0)):
            with pytest.raises(Fenced):
                await zombie.commit_transaction(
                    [OutRecord(out, "k", b"zombie", partition=0)], {0: record.offset + 1}
                )
            with pytest.raises(Fenced):  # it learnt that it lost the partition
                await zombie.commit({0: record.offset + 1})
            with pytest.raises(Fenced):
                await zombie.commit_transaction([], {0: record.offset + 1})
    assert await log.committed(topic, group="seq") == {0: 0}
    assert await visible_values(log, out) == []


async def test_a_new_owner_aborts_the_old_owners_open_transaction_before_reading(
    log: KafkaLog, prefix: str, topic: str
) -> None:
    out = topic + ".out"
    await log.create_topic(topic, partitions=1)
    await log.create_topic(out, partitions=1)
    await log.append([OutRecord(topic, "k", b"in")])
    async with raw_producer(transactional_id=log.transactional_id("seq", topic, 0)) as old:
        await old.begin_transaction()  # the old owner died half-way through a transaction
        await (await old.send(out, b"half-done", key=b"k", partition=0))
        await old.send_offsets_to_transaction({TopicPartition(topic, 0): 1}, prefix + "seq")
        async with log.consumer(topic, group="seq") as new:
            (again,) = await poll_until(new, 1)  # its offset commit was aborted too
            assert (again.offset, again.value) == (0, b"in")
            await new.commit_transaction([OutRecord(out, "k", b"done", partition=0)], {0: 1})
        with pytest.raises(ProducerFenced):
            await old.commit_transaction()
    assert await log.committed(topic, group="seq") == {0: 1}
    assert await visible_values(log, out) == [b"done"]


async def test_a_fenced_partition_aborts_the_whole_commit(log: KafkaLog, topic: str) -> None:
    out = topic + ".out"
    await log.create_topic(topic, partitions=2)
    await log.create_topic(out, partitions=2)
    await log.append([OutRecord(topic, "k", b"in", partition=p) for p in (0, 1)])
    async with log.consumer(topic, group="seq") as member:
        offsets = {r.partition: r.offset + 1 for r in await poll_until(member, 2)}
        outputs = [OutRecord(out, "k", f"for-{p}".encode(), partition=p) for p in (0, 1)]
        async with raw_producer(transactional_id=log.transactional_id("seq", topic, 1)):
            with pytest.raises(Fenced):
                await member.commit_transaction(outputs, offsets)
        # partition 0 was prepared, then aborted with partition 1; it still commits alone
        (position,) = await member.commit_transaction(
            [OutRecord(out, "k", b"again-0", partition=0)], {0: offsets[0]}
        )
    assert position.partition == 0
    assert await log.committed(topic, group="seq") == {0: 1, 1: 0}
    assert await visible_values(log, out) == [b"again-0"]


async def test_one_commit_spans_input_partitions_each_with_its_outputs(
    log: KafkaLog, topic: str
) -> None:
    out = topic + ".out"
    await log.create_topic(topic, partitions=3)
    await log.create_topic(out, partitions=3)
    await log.append([OutRecord(topic, "k", b"in", partition=p) for p in range(3)])
    outputs = [
        OutRecord(out, "k", b"two", partition=2),
        OutRecord(out, "k", b"zero", partition=0),
        OutRecord(out, "chat-7", b"by-key"),
        OutRecord(out, "k", b"two-again", partition=2),
    ]
    async with log.consumer(topic, group="seq") as member:
        records = await poll_until(member, 3)
        positions = await member.commit_transaction(
            outputs, {r.partition: r.offset + 1 for r in records}
        )
        assert (await member.poll(timeout_s=0.3)).records == []  # nothing is read twice
    (probe,) = await log.append([OutRecord(out, "chat-7", b"probe")])
    assert [p.partition for p in positions] == [2, 0, probe.partition, 2]
    assert positions[0].offset < positions[3].offset  # in output order
    assert await log.committed(topic, group="seq") == {0: 1, 1: 1, 2: 1}
    stored = {(r.partition, r.offset): r.value for r in await visible_records(log, out)}
    assert {positions[i]: r.value for i, r in enumerate(outputs)}.items() <= stored.items()
    assert len(stored) == len(outputs) + 1  # and the probe


# -- reading committed data -----------------------------------------------------------


async def test_aborted_and_open_transactions_stay_invisible(log: KafkaLog, topic: str) -> None:
    state = topic + ".state"
    await log.create_topic(topic, partitions=1)
    await log.create_topic(state, partitions=1, compacted=True)
    await log.append([OutRecord(state, "a", b"1")])
    async with raw_producer(transactional_id=unique("it-raw-")) as raw:
        await raw.begin_transaction()
        await (await raw.send(topic, b"aborted", key=b"k", partition=0))
        await (await raw.send(state, b"aborted", key=b"a", partition=0))
        await raw.abort_transaction()
        await log.append([OutRecord(topic, "k", b"visible")])
        assert await log.read_compacted(state, 0) == {"a": b"1"}
        # An open transaction hides its records and everything after them.
        await raw.begin_transaction()
        await (await raw.send(state, b"open", key=b"b", partition=0))
        await log.append([OutRecord(state, "c", b"after")])
        with anyio.fail_after(5):
            assert await log.read_compacted(state, 0) == {"a": b"1"}
        await raw.commit_transaction()
    assert await log.read_compacted(state, 0) == {"a": b"1", "b": b"open", "c": b"after"}
    async with log.consumer(topic, group="g") as consumer:
        (record,) = await poll_until(consumer, 1)
        assert record.value == b"visible" and record.offset > 0  # the aborted one took 0
        assert (await consumer.poll(timeout_s=0.3)).records == []
    assert await log.end_offsets(topic) == {0: 3}  # the abort marker takes an offset too


async def test_compacted_topics_store_tombstones_for_empty_values(
    log: KafkaLog, topic: str
) -> None:
    plain = topic + ".plain"
    await log.create_topic(topic, partitions=1, compacted=True)
    await log.create_topic(plain, partitions=1)
    await log.append([OutRecord(topic, "a", b"1"), OutRecord(topic, "a", b"")])
    await log.append([OutRecord(plain, "a", b"")])
    assert await log.read_compacted(topic, 0) == {}
    assert await cleanup_policy(topic) == "compact"
    assert await cleanup_policy(plain) == "delete"
    assert [m.value for m in await raw_records(topic)] == [b"1", None]  # a real tombstone
    assert [m.value for m in await raw_records(plain)] == [b""]
    with pytest.raises(InvalidRequest):
        await log.read_compacted(topic, 1)
    with pytest.raises(InvalidRequest):
        async with log.consumer(topic, group="g"):
            pass


async def cleanup_policy(topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})
        (response,) = await admin.describe_configs([resource])
        (found,) = response.to_object()["resources"]
        return str(found["config_entries"][0]["config_value"])
    finally:
        await admin.close()


async def raw_records(topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA_BOOTSTRAP, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        batch = await consumer.getmany(tp, timeout_ms=5000)
        return list(batch.get(tp, []))
    finally:
        await consumer.stop()


# -- rebalancing --------------------------------------------------------------------


async def test_partitions_kept_through_a_rebalance_keep_their_position(
    log: KafkaLog, topic: str
) -> None:
    await log.create_topic(topic, partitions=4)
    await log.append([OutRecord(topic, "k", b"first", partition=p) for p in range(4)])
    async with log.consumer(topic, group="g") as a:
        assert len(await poll_until(a, 4)) == 4  # read, not committed yet
        async with log.consumer(topic, group="g") as b:
            batch = await a.poll(timeout_s=0.05)
            kept = a.assignment
            assert kept and kept != {0, 1, 2, 3}
            assert batch.revoked == {0, 1, 2, 3} - kept
            assert not batch.assigned  # nothing to restore for the partitions it kept
            await log.append([OutRecord(topic, "k", b"second", partition=p) for p in range(4)])
            more = batch.records + await poll_until(a, len(kept) - len(batch.records))
            assert sorted((r.partition, r.value) for r in more) == [(p, b"second") for p in kept]
            # The batch read before the rebalance commits for what it kept, not for the rest.
            await a.commit_transaction([], dict.fromkeys(kept, 1))
            with pytest.raises(Fenced):
                await a.commit(dict.fromkeys({0, 1, 2, 3} - kept, 1))
            b_records = await poll_until(b, 2 * (4 - len(kept)))  # b starts at the commit
            assert {r.partition for r in b_records} == {0, 1, 2, 3} - kept
    assert await log.committed(topic, group="g") == {p: int(p in kept) for p in range(4)}


# -- topics and errors --------------------------------------------------------------


async def test_missing_topics_are_reported_never_created(log: KafkaLog, prefix: str) -> None:
    missing = f"{prefix}-missing"
    with pytest.raises(NotFound):
        await log.partition_count(missing)
    with pytest.raises(NotFound):
        await log.append([OutRecord(missing, "k", b"v")])
    with pytest.raises(NotFound):
        await log.end_offsets(missing)
    with pytest.raises(NotFound):
        await log.committed(missing, group="g")
    with pytest.raises(NotFound):
        await log.read_compacted(missing, 0)
    with pytest.raises(NotFound):
        async with log.consumer(missing, group="g"):
            pass
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        assert missing not in await admin.list_topics()
    finally:
        await admin.close()


async def test_topics_created_elsewhere_are_found(log: KafkaLog, topic: str) -> None:
    async with KafkaLog(KAFKA_BOOTSTRAP) as other:
        await other.create_topic(topic, partitions=3, compacted=True)
    assert await log.partition_count(topic) == 3
    await log.create_topic(topic, partitions=3)  # exists: nothing to do
    with pytest.raises(InvalidRequest):
        await log.create_topic(topic, partitions=2)
    assert await log.read_compacted(topic, 2) == {}
    with pytest.raises(InvalidRequest):
        await log.create_topic(topic + ".bad", partitions=0)
    with pytest.raises(InvalidRequest):
        await log.create_topic("bad name!", partitions=1)


async def test_an_unreachable_cluster_is_unavailable() -> None:
    log = KafkaLog("127.0.0.1:1", request_timeout_ms=2_000)
    with anyio.fail_after(15):
        with pytest.raises(Unavailable):
            await log.create_topic("t", partitions=1)
        with pytest.raises(Unavailable):
            await log.append([OutRecord("t", "k", b"v")])
        with pytest.raises(Unavailable):
            async with log:
                pass
    await log.aclose()
    await log.aclose()
    with pytest.raises(ChatcoreClosed):
        await log.partition_count("t")


async def test_closing_the_log_closes_its_consumers(log: KafkaLog, topic: str) -> None:
    await log.create_topic(topic, partitions=1)
    consumer = log.consumer(topic, group="g")
    await consumer.__aenter__()
    await log.aclose()
    with pytest.raises(ChatcoreClosed):
        await consumer.poll(timeout_s=0.05)
    await consumer.aclose()  # idempotent after the log closed it


def test_inconsistent_options_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        KafkaLog(KAFKA_BOOTSTRAP, session_timeout_ms=6_000, heartbeat_interval_ms=6_000)
    with pytest.raises(InvalidRequest):
        KafkaLog(KAFKA_BOOTSTRAP, replication_factor=0)


async def test_producers_send_large_batches(log: KafkaLog, topic: str) -> None:
    # aiokafka's 16 KiB default cost one produce round trip per 16 KiB of a transaction.
    await log.create_topic(topic, partitions=1)
    await log.append([OutRecord(topic, "k", b"x")])
    async with log.consumer(topic, group="g") as consumer:
        await poll_until(consumer, 1)
        producers = consumer._producers.values()  # white box: aiokafka hides its options
        shared = await log._clients.producer()
        for producer in [shared, *producers]:
            assert producer._message_accumulator._batch_size == 512 * 1024


@pytest.mark.parametrize("size", [1023, 1024 * 1024 + 1])
def test_max_batch_bytes_is_checked(size: int) -> None:
    with pytest.raises(InvalidRequest, match="max_batch_bytes"):
        KafkaLog(KAFKA_BOOTSTRAP, max_batch_bytes=size)
