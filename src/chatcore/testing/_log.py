"""``PartitionedLog`` conformance: what every backend of the port must do."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import ClassVar

import anyio
import pytest

from chatcore.errors import ChatcoreClosed, Fenced, InvalidRequest, NotFound
from chatcore.log._base import LogConsumer, LogRecord, OutRecord, PartitionedLog
from chatcore.testing._backend import Make

__all__ = ["LogSuite"]


async def poll_until(
    consumer: LogConsumer, want: int, *, timeout_s: float = 5.0
) -> list[LogRecord]:
    got: list[LogRecord] = []
    with anyio.fail_after(timeout_s):
        while len(got) < want:
            batch = await consumer.poll(timeout_s=0.2)
            got.extend(batch.records)
    return got


class LogSuite:
    """The ``PartitionedLog`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_log``: it returns an async callable giving a new, not
    yet entered log over this test's own storage (a fresh file, or consumer group
    prefix on a shared cluster). Set ``durable = True`` if a later log of one test
    reads what earlier ones wrote (a restart). Topic names are unique per test.
    """

    pytestmark = pytest.mark.anyio
    durable: ClassVar[bool] = False

    @pytest.fixture
    def make_log(self) -> Make[PartitionedLog]:
        """Override: new logs of the backend under test over this test's storage."""
        raise NotImplementedError("override the make_log fixture")

    @pytest.fixture
    async def log(self, make_log: Make[PartitionedLog]) -> AsyncIterator[PartitionedLog]:
        async with await make_log() as log:
            yield log

    @pytest.fixture
    def topic(self) -> str:
        return f"t-{uuid.uuid4().hex[:8]}"

    async def test_records_with_one_key_keep_order_in_one_partition(
        self, log: PartitionedLog, topic: str
    ) -> None:
        await log.create_topic(topic, partitions=4)
        positions = await log.append(
            [OutRecord(topic, "chat-a", f"{i}".encode()) for i in range(20)]
        )
        assert len({p.partition for p in positions}) == 1
        assert [p.offset for p in positions] == list(range(20))
        async with log.consumer(topic, group="g") as consumer:
            records = await poll_until(consumer, 20)
        assert [r.value for r in records] == [f"{i}".encode() for i in range(20)]
        assert all(r.key == "chat-a" and r.topic == topic for r in records)

    async def test_explicit_partition_and_bad_partition(
        self, log: PartitionedLog, topic: str
    ) -> None:
        await log.create_topic(topic, partitions=3)
        (pos,) = await log.append([OutRecord(topic, "k", b"v", partition=2)])
        assert pos.partition == 2
        with pytest.raises(InvalidRequest):
            await log.append([OutRecord(topic, "k", b"v", partition=3)])
        assert (await log.end_offsets(topic)) == {0: 0, 1: 0, 2: 1}

    async def test_create_topic_is_idempotent_and_checks_partitions(
        self, log: PartitionedLog, topic: str
    ) -> None:
        await log.create_topic(topic, partitions=2)
        await log.create_topic(topic, partitions=2)
        assert await log.partition_count(topic) == 2
        with pytest.raises(InvalidRequest):
            await log.create_topic(topic, partitions=5)
        with pytest.raises(NotFound):
            await log.partition_count(topic + "-missing")
        with pytest.raises(NotFound):
            await log.append([OutRecord(topic + "-missing", "k", b"v")])

    async def test_consumer_resumes_at_committed_offset(
        self, log: PartitionedLog, topic: str
    ) -> None:
        await log.create_topic(topic, partitions=1)
        await log.append([OutRecord(topic, "k", bytes([i])) for i in range(10)])
        async with log.consumer(topic, group="g") as consumer:
            first = await poll_until(consumer, 10)
            await consumer.commit({0: first[3].offset + 1})
        async with log.consumer(topic, group="g") as consumer:
            again = await poll_until(consumer, 6)
        assert [r.offset for r in again] == list(range(4, 10))
        assert (await log.committed(topic, group="g")) == {0: 4}

    async def test_groups_are_independent(self, log: PartitionedLog, topic: str) -> None:
        await log.create_topic(topic, partitions=2)
        await log.append([OutRecord(topic, f"k{i}", b"x") for i in range(8)])
        async with log.consumer(topic, group="a") as a, log.consumer(topic, group="b") as b:
            assert len(await poll_until(a, 8)) == 8
            assert len(await poll_until(b, 8)) == 8

    async def test_poll_waits_for_new_records(self, log: PartitionedLog, topic: str) -> None:
        await log.create_topic(topic, partitions=1)
        async with log.consumer(topic, group="g") as consumer:
            await consumer.poll(timeout_s=0.05)  # take the assignment
            async with anyio.create_task_group() as tg:

                async def later() -> None:
                    await anyio.sleep(0.05)
                    await log.append([OutRecord(topic, "k", b"late")])

                tg.start_soon(later)
                with anyio.fail_after(5):
                    records = await poll_until(consumer, 1)
        assert records[0].value == b"late"

    async def test_partitions_are_shared_and_move_when_a_member_leaves(
        self, log: PartitionedLog, topic: str
    ) -> None:
        await log.create_topic(topic, partitions=4)
        a = log.consumer(topic, group="g")
        b = log.consumer(topic, group="g")
        async with a:
            async with b:
                await a.poll(timeout_s=0.05)
                await b.poll(timeout_s=0.05)
                assert a.assignment
                assert b.assignment
                assert a.assignment | b.assignment == {0, 1, 2, 3}
                assert not a.assignment & b.assignment
            batch = await a.poll(timeout_s=0.05)
            assert a.assignment == {0, 1, 2, 3}
            assert batch.assigned  # it learns which partitions it gained

    async def test_stale_member_is_fenced(self, log: PartitionedLog, topic: str) -> None:
        out = topic + ".out"
        await log.create_topic(topic, partitions=2)
        await log.create_topic(out, partitions=2)
        await log.append([OutRecord(topic, "k", b"in", partition=p) for p in (0, 1)])
        async with log.consumer(topic, group="g") as old:
            records = await poll_until(old, 2)
            async with log.consumer(topic, group="g") as new:
                with anyio.fail_after(5):
                    while not new.assignment:
                        await new.poll(timeout_s=0.05)
                (taken,) = new.assignment  # `old` still holds its batch from that partition
                stale = next(r for r in records if r.partition == taken)
                with pytest.raises(Fenced):
                    await old.commit_transaction(
                        [OutRecord(out, "k", b"stale", partition=taken)], {taken: stale.offset + 1}
                    )
                with pytest.raises(Fenced):
                    await old.commit({taken: stale.offset + 1})
        assert (await log.end_offsets(out)) == {0: 0, 1: 0}
        assert (await log.committed(topic, group="g")) == {0: 0, 1: 0}

    async def test_transaction_writes_outputs_and_offsets_together(
        self, log: PartitionedLog, topic: str
    ) -> None:
        out = topic + ".out"
        await log.create_topic(topic, partitions=2)
        await log.create_topic(out, partitions=2)
        await log.append([OutRecord(topic, "k", b"a", partition=1)])
        async with log.consumer(topic, group="g") as consumer:
            (record,) = await poll_until(consumer, 1)
            positions = await consumer.commit_transaction(
                [OutRecord(out, "k", b"A", partition=1), OutRecord(out, "k", b"AA", partition=1)],
                {1: record.offset + 1},
            )
        assert [p.offset for p in positions] == [0, 1]
        assert (await log.committed(topic, group="g"))[1] == 1
        async with log.consumer(out, group="reader") as reader:
            assert [r.value for r in await poll_until(reader, 2)] == [b"A", b"AA"]

    async def test_backlog_counts_what_a_group_has_not_committed(
        self, log: PartitionedLog, topic: str
    ) -> None:
        await log.create_topic(topic, partitions=2)
        assert await log.backlog(topic, group="g") == {0: 0, 1: 0}
        await log.append([OutRecord(topic, "k", bytes([i]), partition=0) for i in range(3)])
        ends = await log.end_offsets(topic)
        assert await log.backlog(topic, group="g") == {0: 3, 1: 0}
        async with log.consumer(topic, group="g") as consumer:
            records = await poll_until(consumer, 3)
            await consumer.commit({0: records[0].offset + 1})
            assert await log.backlog(topic, group="g") == {0: 2, 1: 0}
            await consumer.commit({0: records[-1].offset + 1})
        await log.append([OutRecord(topic, "k", b"later", partition=1)])
        assert await log.backlog(topic, group="g", ends=ends) == {0: 0, 1: 0}
        assert await log.backlog(topic, group="g") == {0: 0, 1: 1}
        assert await log.backlog(topic, group="other", ends=ends) == {0: 3, 1: 0}
        with pytest.raises(NotFound):
            await log.backlog(topic + ".missing", group="g")

    async def test_backlog_is_zero_after_the_last_record_of_transactions(
        self, log: PartitionedLog, topic: str
    ) -> None:
        """Transaction markers after a topic's last record are not records to consume."""
        out = topic + ".out"
        await log.create_topic(topic, partitions=1)
        await log.create_topic(out, partitions=1)
        await log.append([OutRecord(topic, "k", b"a"), OutRecord(topic, "k", b"b")])
        async with log.consumer(topic, group="g") as consumer:
            for record in await poll_until(consumer, 2):
                await consumer.commit_transaction(
                    [OutRecord(out, "k", record.value)], {0: record.offset + 1}
                )
        assert await log.backlog(out, group="reader") != {0: 0}
        async with log.consumer(out, group="reader") as reader:
            records = await poll_until(reader, 2)
            await reader.commit({0: records[-1].offset + 1})
        assert await log.backlog(out, group="reader") == {0: 0}
        assert await log.backlog(topic, group="g") == {0: 0}

    async def test_compacted_topic_keeps_latest_value_per_key(
        self, log: PartitionedLog, topic: str
    ) -> None:
        await log.create_topic(topic, partitions=2, compacted=True)
        await log.append(
            [
                OutRecord(topic, "a", b"1", partition=0),
                OutRecord(topic, "b", b"1", partition=0),
                OutRecord(topic, "a", b"2", partition=0),
                OutRecord(topic, "b", b"", partition=0),  # tombstone
                OutRecord(topic, "c", b"9", partition=1),
            ]
        )
        assert await log.read_compacted(topic, 0) == {"a": b"2"}
        assert await log.read_compacted(topic, 1) == {"c": b"9"}
        plain = topic + ".plain"
        await log.create_topic(plain, partitions=1)
        with pytest.raises(InvalidRequest):
            await log.read_compacted(plain, 0)

    async def test_concurrent_appends_are_all_durable_and_ordered_per_key(
        self, make_log: Make[PartitionedLog], topic: str
    ) -> None:
        log = await make_log()
        await log.create_topic(topic, partitions=3)

        async def writer(key: str) -> None:
            for i in range(30):
                await log.append([OutRecord(topic, key, f"{key}:{i}".encode())])

        async with anyio.create_task_group() as tg:
            for w in range(8):
                tg.start_soon(writer, f"w{w}")
        if self.durable:  # restart: the durable backend reads its file again
            await log.aclose()
            log = await make_log()
        async with log, log.consumer(topic, group="check") as consumer:
            records = await poll_until(consumer, 240)
        by_key: dict[str, list[int]] = {}
        for r in records:
            key, i = r.value.decode().split(":")
            by_key.setdefault(key, []).append(int(i))
        assert by_key == {f"w{w}": list(range(30)) for w in range(8)}

    async def test_closed_log_refuses_use(self, make_log: Make[PartitionedLog], topic: str) -> None:
        log = await make_log()
        await log.create_topic(topic, partitions=1)
        await log.aclose()
        await log.aclose()  # idempotent
        with pytest.raises(ChatcoreClosed):
            await log.append([OutRecord(topic, "k", b"v")])
