"""Hypothesis stateful test: the Sequencer's order and exactly-once invariants.

Messages (and retries of them) are appended to ``chat.submitted``; the Sequencer is
stepped batch by batch, crashed (its memory lost, a new one started from the log),
and its transactions fail before or after they take effect. Whatever happens,
``chat.messages`` must hold every submitted message exactly once, with seq 1..n per
chat and each sender's messages in their send order.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Literal, Self

import anyio
import anyio.from_thread
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chatcore.errors import Unavailable
from chatcore.log import ConsumerBatch, LogConsumer, MemoryLog, OutRecord, RecordPosition
from chatcore.pipeline.records import DEFAULT_TOPICS, Submitted, decode_message, encode
from chatcore.pipeline.sequencer import Sequencer

TOPICS = DEFAULT_TOPICS
CHATS = ["c1", "c2", "c3"]
SENDERS = ["alice", "bob", "carol"]

Fault = Literal["none", "before", "after"]


class FaultyConsumer:
    """Delegates to a real consumer; its next transaction can fail before or after."""

    def __init__(self, inner: LogConsumer) -> None:
        self.inner = inner
        self.fault: Fault = "none"

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.inner.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def assignment(self) -> frozenset[int]:
        return self.inner.assignment

    async def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> ConsumerBatch:
        return await self.inner.poll(max_records=max_records, timeout_s=timeout_s)

    async def commit(self, offsets: Mapping[int, int]) -> None:
        await self.inner.commit(offsets)

    async def commit_transaction(
        self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]
    ) -> list[RecordPosition]:
        fault, self.fault = self.fault, "none"
        if fault == "before":
            raise Unavailable("injected: transaction lost before it reached the log")
        positions = await self.inner.commit_transaction(outputs, offsets)
        if fault == "after":
            raise Unavailable("injected: transaction done, acknowledgement lost")
        return positions


class SequencerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.portal_cm = anyio.from_thread.start_blocking_portal("asyncio")
        self.portal = self.portal_cm.__enter__()
        self.log = MemoryLog()
        self.ids = itertools.count(1)
        self.sent: dict[tuple[str, str], list[str]] = {}  # (chat, sender) -> cmids in order
        self.consumer: FaultyConsumer | None = None
        self.sequencer: Sequencer | None = None

    def teardown(self) -> None:
        try:
            self.drain_everything()
            self.check_complete()
        finally:
            if self.consumer is not None:
                self.portal.call(self.consumer.aclose)
            self.portal_cm.__exit__(None, None, None)

    @initialize(partitions=st.integers(1, 3))
    def start(self, partitions: int) -> None:
        async def create() -> None:
            for topic in (TOPICS.submitted, TOPICS.messages):
                await self.log.create_topic(topic, partitions=partitions)
            await self.log.create_topic(
                TOPICS.sequencer_state, partitions=partitions, compacted=True
            )

        self.portal.call(create)
        self.restart()

    def restart(self) -> None:
        if self.consumer is not None:
            self.portal.call(self.consumer.aclose)
        self.sequencer = Sequencer(self.log, topics=TOPICS)
        self.consumer = FaultyConsumer(self.log.consumer(TOPICS.submitted, group="seq"))
        self.portal.call(self.consumer.__aenter__)

    def append(self, chat: str, sender: str, cmid: str) -> None:
        sub = Submitted(next(self.ids), chat, sender, cmid, "text", cmid, ts=0)
        record = OutRecord(TOPICS.submitted, chat, encode(sub))
        self.portal.call(self.log.append, [record])

    @rule(chat=st.sampled_from(CHATS), sender=st.sampled_from(SENDERS))
    def send(self, chat: str, sender: str) -> None:
        cmids = self.sent.setdefault((chat, sender), [])
        cmid = f"{sender}-{chat}-{len(cmids)}"
        cmids.append(cmid)
        self.append(chat, sender, cmid)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        (chat, sender) = data.draw(st.sampled_from(sorted(self.sent)))
        cmid = data.draw(st.sampled_from(self.sent[(chat, sender)]))
        self.append(chat, sender, cmid)

    @rule(max_records=st.integers(1, 8), fault=st.sampled_from(["none", "none", "before", "after"]))
    def step(self, max_records: int, fault: Fault) -> None:
        assert self.consumer is not None and self.sequencer is not None
        consumer, sequencer = self.consumer, self.sequencer
        consumer.fault = fault

        async def once() -> None:
            batch = await consumer.poll(max_records=max_records, timeout_s=0.01)
            await sequencer.handle(consumer, batch)

        try:
            self.portal.call(once)
        except Unavailable:
            self.restart()  # what the node's supervisor does

    @rule()
    def crash(self) -> None:
        self.restart()

    def sequenced(self) -> list[tuple[str, int, str, str]]:
        async def read() -> list[tuple[str, int, str, str]]:
            out = []
            ends = await self.log.end_offsets(TOPICS.messages)
            async with self.log.consumer(TOPICS.messages, group=f"check-{next(self.ids)}") as c:
                remaining = sum(ends.values())
                while remaining > 0:
                    batch = await c.poll(timeout_s=0.05)
                    remaining -= len(batch.records)
                    for r in batch.records:
                        m = decode_message(r.value)
                        out.append((m.chat_id, m.seq, m.sender, m.client_msg_id))
            return out

        return self.portal.call(read)

    @invariant()
    def ordered_and_unique(self) -> None:
        rows = self.sequenced()
        by_chat: dict[str, list[tuple[int, str, str]]] = {}
        for chat, seq, sender, cmid in rows:
            by_chat.setdefault(chat, []).append((seq, sender, cmid))
        for chat, items in by_chat.items():
            items.sort()
            assert [seq for seq, _, _ in items] == list(range(1, len(items) + 1)), chat
            keys = [(sender, cmid) for _, sender, cmid in items]
            assert len(keys) == len(set(keys)), f"duplicate in {chat}"
            for sender in SENDERS:
                mine = [cmid for _, s, cmid in items if s == sender]
                assert mine == self.sent.get((chat, sender), [])[: len(mine)], (chat, sender)

    def drain_everything(self) -> None:
        assert self.consumer is not None and self.sequencer is not None
        for _ in range(200):
            ends = self.portal.call(self.log.end_offsets, TOPICS.submitted)
            committed = self.portal.call(lambda: self.log.committed(TOPICS.submitted, group="seq"))
            if committed == ends:
                return
            self.step(max_records=50, fault="none")
        raise AssertionError("the sequencer did not catch up")

    def check_complete(self) -> None:
        self.ordered_and_unique()
        stored = {(chat, sender, cmid) for chat, _, sender, cmid in self.sequenced()}
        expected = {
            (chat, sender, cmid) for (chat, sender), cmids in self.sent.items() for cmid in cmids
        }
        assert stored == expected


SequencerMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None
)
TestSequencerStateful = SequencerMachine.TestCase
