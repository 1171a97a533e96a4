"""Pipelines: the Sequencer (and the workers' ``consume``) poll and handle batch N+1
while batch N commits.

Order and exactly-once must hold as without it, also when a transaction fails while
the next batch is already sequenced.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import partial

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chatcore.errors import Unavailable
from chatcore.log import ConsumerBatch, MemoryLog, OutRecord, RecordPosition
from chatcore.log._embedded import EmbeddedConsumer, partition_for
from chatcore.pipeline.records import (
    DEFAULT_TOPICS,
    Submitted,
    decode_message,
    decode_submitted,
    encode,
)
from chatcore.pipeline.sequencer import Sequencer
from chatcore.pipeline.stages import SEQUENCER
from chatcore.pipeline.workers import consume
from chatcore.telemetry.tracing import Tracing

pytestmark = pytest.mark.anyio

TOPICS = DEFAULT_TOPICS
CHATS = ("c1", "c2", "c3")


class WatchedConsumer(EmbeddedConsumer):
    """An embedded consumer whose transactions first wait for a hook."""

    before_commit: list[object]

    async def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> ConsumerBatch:
        batch = await super().poll(max_records=max_records, timeout_s=timeout_s)
        log = self._log
        assert isinstance(log, WatchedLog)
        if batch.records:
            log.polled_with_records += 1
            log.polled.set()
        return batch

    async def commit_transaction(
        self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]
    ) -> list[RecordPosition]:
        await self._hook()
        return await super().commit_transaction(outputs, offsets)

    async def commit(self, offsets: Mapping[int, int]) -> None:
        await self._hook()
        await super().commit(offsets)

    async def _hook(self) -> None:
        log = self._log
        assert isinstance(log, WatchedLog)
        log.transactions += 1
        if log.transactions == 1:
            # The first commit is in flight until the next batch has been polled.
            while log.polled_with_records < 2:
                await log.polled.wait()
                log.polled = anyio.Event()
        if log.transactions == log.fail_at:
            raise Unavailable("injected: transaction lost")


class WatchedLog(MemoryLog):
    def __init__(self, *, fail_at: int = 0) -> None:
        super().__init__()
        self.polled = anyio.Event()
        self.polled_with_records = 0
        self.transactions = 0
        self.fail_at = fail_at

    def consumer(self, topic: str, *, group: str) -> EmbeddedConsumer:
        self._memory.add_reader(topic, group)
        return WatchedConsumer(self, topic, group)


async def setup(log: MemoryLog, count: int) -> list[tuple[str, str]]:
    for topic in (TOPICS.submitted, TOPICS.messages):
        await log.create_topic(topic, partitions=2)
    await log.create_topic(TOPICS.sequencer_state, partitions=2, compacted=True)
    ids = itertools.count(1)
    sent = []
    for i in range(count):
        chat = CHATS[i % len(CHATS)]
        body = f"{chat}:{i}"
        sub = Submitted(next(ids), chat, "alice", body, "text", body, ts=0)
        await log.append([OutRecord(TOPICS.submitted, chat, encode(sub))])
        sent.append((chat, body))
    return sent


async def sequenced(log: MemoryLog, want: int) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    async with log.consumer(TOPICS.messages, group="check") as reader:
        with anyio.fail_after(5):
            while len(out) < want:
                for r in (await reader.poll(timeout_s=0.05)).records:
                    m = decode_message(r.value)
                    out.append((m.chat_id, m.seq, m.body))
        assert (await reader.poll(timeout_s=0.05)).records == [], "duplicates"
    return out


def check_order(rows: list[tuple[str, int, str]], sent: list[tuple[str, str]]) -> None:
    for chat in CHATS:
        mine = [(seq, body) for c, seq, body in rows if c == chat]
        bodies = [body for c, body in sent if c == chat]
        assert mine == [(i + 1, body) for i, body in enumerate(bodies)], chat


async def test_the_next_batch_is_polled_while_a_transaction_is_in_flight() -> None:
    log = WatchedLog()
    sent = await setup(log, 12)
    sequencer = Sequencer(log, topics=TOPICS, max_batch=2)
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):  # one batch at a time waits here forever
            await tg.start(sequencer.run)
            rows = await sequenced(log, len(sent))
        tg.cancel_scope.cancel()
    check_order(rows, sent)
    assert sequencer.stats.sequenced == len(sent)
    assert sequencer.stats.transactions == log.transactions


@pytest.mark.parametrize("fail_at", [1, 2, 3])
async def test_a_failed_transaction_with_the_next_batch_sequenced_loses_and_repeats_nothing(
    fail_at: int,
) -> None:
    log = WatchedLog(fail_at=fail_at)
    sent = await setup(log, 12)
    sequencer = Sequencer(log, topics=TOPICS, max_batch=2)
    with anyio.fail_after(5), pytest.raises(Unavailable, match="injected"):
        await sequencer.run()
    assert log.polled_with_records >= 2  # the next batch was sequenced in memory
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):
            await tg.start(sequencer.run)  # restarted as the node's supervisor does
            rows = await sequenced(log, len(sent))
        tg.cancel_scope.cancel()
    check_order(rows, sent)


async def test_workers_handle_the_next_batch_while_an_offset_commit_is_in_flight() -> None:
    log = WatchedLog()
    sent = await setup(log, 12)
    handled: list[bytes] = []

    async def handle(batch: list[bytes]) -> None:
        handled.extend(batch)

    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):  # one batch at a time waits here forever
            await tg.start(
                partial(consume, log, TOPICS.submitted, "history", bytes, handle, max_batch=2)
            )
            while len(handled) < len(sent):
                await log.polled.wait()
        tg.cancel_scope.cancel()
    bodies = [decode_submitted(value).body for value in handled]
    for chat in CHATS:  # each partition's records in order, once
        assert [b for b in bodies if b.startswith(chat)] == [b for c, b in sent if c == chat]


async def test_a_failed_offset_commit_ends_consume_with_that_error() -> None:
    log = WatchedLog(fail_at=2)
    sent = await setup(log, 12)
    handled: list[bytes] = []

    async def handle(batch: list[bytes]) -> None:
        handled.extend(batch)

    with anyio.fail_after(5), pytest.raises(Unavailable, match="injected"):
        await consume(log, TOPICS.submitted, "history", bytes, handle, max_batch=2)
    # At most one batch is handled past the one whose commit failed.
    assert 4 <= len(handled) <= 6 < len(sent)
    async with log.consumer(TOPICS.submitted, group="history") as again:
        batch = await again.poll(max_records=100, timeout_s=1)
    assert len(batch.records) == len(sent) - 2  # only the first commit landed


async def test_a_failed_transaction_ends_the_spans_of_the_batch_sequenced_ahead() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    log = WatchedLog(fail_at=1)
    await setup(log, 12)
    sequencer = Sequencer(log, topics=TOPICS, max_batch=2, tracing=Tracing(provider))
    with anyio.fail_after(5), pytest.raises(Unavailable, match="injected"):
        await sequencer.run()
    ended = [s for s in exporter.get_finished_spans() if s.name == "chatcore.sequence"]
    assert len(ended) == 4  # the failed batch's two and the two sequenced ahead
    assert all(s.events and s.events[0].name == "exception" for s in ended)
    provider.shutdown()


class HeldConsumer(EmbeddedConsumer):
    """An embedded consumer whose first transaction waits until ``release`` is set, and
    which counts the records its polls hand out."""

    async def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> ConsumerBatch:
        batch = await super().poll(max_records=max_records, timeout_s=timeout_s)
        log = self._log
        assert isinstance(log, HeldLog)
        log.handed_out += len(batch.records)
        log.progress.set()
        return batch

    async def commit_transaction(
        self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]
    ) -> list[RecordPosition]:
        log = self._log
        assert isinstance(log, HeldLog)
        log.sizes.append(sum(1 for o in outputs if o.topic == TOPICS.messages))
        if len(log.sizes) == 1:
            log.in_flight.set()
            await log.release.wait()
        return await super().commit_transaction(outputs, offsets)


class HeldLog(MemoryLog):
    def __init__(self) -> None:
        super().__init__()
        self.in_flight = anyio.Event()
        self.release = anyio.Event()
        self.progress = anyio.Event()
        self.handed_out = 0
        self.sizes: list[int] = []

    def consumer(self, topic: str, *, group: str) -> EmbeddedConsumer:
        self._memory.add_reader(topic, group)
        return HeldConsumer(self, topic, group)


async def append(log: MemoryLog, start: int, count: int) -> list[tuple[str, str]]:
    sent = []
    for i in range(start, start + count):
        chat = CHATS[i % len(CHATS)]
        body = f"{chat}:{i}"
        sub = Submitted(1000 + i, chat, "alice", body, "text", body, ts=0)
        await log.append([OutRecord(TOPICS.submitted, chat, encode(sub))])
        sent.append((chat, body))
    return sent


@pytest.mark.parametrize("max_batch", [500, 4])
async def test_records_that_arrive_during_a_transaction_all_join_the_next_one(
    max_batch: int,
) -> None:
    log = HeldLog()
    sent = await setup(log, 1)
    sequencer = Sequencer(log, topics=TOPICS, max_batch=max_batch)
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):
            await tg.start(sequencer.run)
            await log.in_flight.wait()
            for i in range(1, 7):  # one at a time: each poll may hand out one
                sent += await append(log, i, 1)
                while log.handed_out < min(1 + i, 1 + max_batch):
                    await log.progress.wait()
                    log.progress = anyio.Event()
            log.release.set()
            rows = await sequenced(log, len(sent))
        tg.cancel_scope.cancel()
    check_order(rows, sent)
    # All six polled while the first transaction was in flight go in the next one, as
    # far as max_batch allows; the rest in the one after.
    assert log.sizes == ([1, 6] if max_batch >= 6 else [1, max_batch, 6 - max_batch])


async def test_records_of_a_partition_lost_while_they_waited_are_left_to_its_new_owner() -> None:
    """Records of both partitions wait (sequenced, not committed) behind a transaction in
    flight when a second Sequencer joins and takes partition 1. The first commits what it
    holds of partition 0 only (committing partition 1's would be refused: it is fenced);
    the second sequences partition 1 from its committed offset: every message once, in
    order, with contiguous seqs, and neither Sequencer fails."""
    chats = {p: next(f"c{i}" for i in range(100) if partition_for(f"c{i}", 2) == p) for p in (0, 1)}
    log = HeldLog()
    for topic in (TOPICS.submitted, TOPICS.messages):
        await log.create_topic(topic, partitions=2)
    await log.create_topic(TOPICS.sequencer_state, partitions=2, compacted=True)
    sent: list[tuple[str, str]] = []

    async def submit(chat: str, i: int) -> None:
        sub = Submitted(i, chat, "alice", f"{chat}:{i}", "text", f"{chat}:{i}", ts=0)
        await log.append([OutRecord(TOPICS.submitted, chat, encode(sub))])
        sent.append((chat, f"{chat}:{i}"))

    await submit(chats[0], 1)  # the first transaction: partition 0, which the first keeps
    first, second = Sequencer(log, topics=TOPICS), Sequencer(log, topics=TOPICS)
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):
            await tg.start(first.run)
            await log.in_flight.wait()
            for i in range(2, 8):  # both partitions, polled into the next transaction
                await submit(chats[i % 2], i)
                while log.handed_out < i:
                    await log.progress.wait()
                    log.progress = anyio.Event()
            await tg.start(second.run)  # a rebalance: partition 1 moves to it
            assert log._groups.assignment(SEQUENCER.group, TOPICS.submitted, 1) == {0}
            log.release.set()
            rows = await sequenced(log, len(sent))
        tg.cancel_scope.cancel()
    for chat in chats.values():
        mine = [(seq, body) for c, seq, body in rows if c == chat]
        bodies = [body for c, body in sent if c == chat]
        assert mine == [(i + 1, body) for i, body in enumerate(bodies)], chat
    assert first.stats.sequenced + second.stats.sequenced == len(sent)
