"""The Sequencer on real Kafka: partitions change hands, seq stays contiguous and unique.

Two Sequencers of one group share ``chat.submitted``; one joins while the other
works, then the first stops while messages keep coming. Each runs under a
supervisor that restarts it when the log fences it, as ChatNode does. In the end
every submitted message is in ``chat.messages`` exactly once, with seq 1..n per
chat in submission order, and retries of a message are dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import count

import anyio
import pytest
from anyio.abc import TaskStatus

from chatcore.log import OutRecord
from chatcore.log.kafka import KafkaLog
from chatcore.pipeline.records import Submitted, Topics, decode_message, encode
from chatcore.pipeline.sequencer import Sequencer
from tests.services import KAFKA_BOOTSTRAP, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]

CHATS = [f"chat-{i}" for i in range(6)]
ids = count(1)


@pytest.fixture
async def log() -> AsyncIterator[KafkaLog]:
    require("kafka")
    async with KafkaLog(
        KAFKA_BOOTSTRAP,
        group_prefix=unique("it-"),
        request_timeout_ms=10_000,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=100,
        rebalance_timeout_ms=10_000,
    ) as log:
        yield log


async def submit(log: KafkaLog, topics: Topics, first: int, last: int) -> None:
    """Messages ``first..last-1`` of every chat, each sent twice (a client retry)."""
    records = []
    for i in range(first, last):
        for chat in CHATS:
            sub = Submitted(next(ids), chat, "alice", f"m{i}", "text", f"{chat}:{i}", ts=0)
            records += [OutRecord(topics.submitted, chat, encode(sub))] * 2
    await log.append(records)


async def caught_up(log: KafkaLog, topics: Topics) -> None:
    with anyio.fail_after(30):
        while await log.committed(topics.submitted, group="seq") != await log.end_offsets(
            topics.submitted
        ):
            await anyio.sleep(0.05)


async def supervise(
    sequencer: Sequencer, restarts: list[int], *, task_status: TaskStatus[None]
) -> None:
    started = False
    while True:
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(sequencer.run)
                if not started:
                    started = True
                    task_status.started()
        except Exception:  # fenced or unavailable: start again from the log
            restarts.append(1)
            await anyio.sleep(0.05)


async def sequenced(log: KafkaLog, topics: Topics, want: int) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    async with log.consumer(topics.messages, group=unique("check-")) as reader:
        with anyio.fail_after(30):
            while len(out) < want:
                for r in (await reader.poll(timeout_s=0.2)).records:
                    m = decode_message(r.value)
                    out.append((m.chat_id, m.seq, m.body))
        extra = (await reader.poll(timeout_s=0.5)).records
    assert extra == [], "duplicates in chat.messages"
    return out


async def test_partitions_change_hands_without_gaps_or_repeats(log: KafkaLog) -> None:
    topics = Topics.prefixed(unique("it-") + ".")
    for topic in (topics.submitted, topics.messages):
        await log.create_topic(topic, partitions=2)
    await log.create_topic(topics.sequencer_state, partitions=2, compacted=True)
    restarts: list[int] = []
    first, second = (Sequencer(log, topics=topics, group="seq") for _ in range(2))
    async with anyio.create_task_group() as tg:
        await submit(log, topics, 0, 10)
        async with anyio.create_task_group() as first_only:
            await first_only.start(supervise, first, restarts)
            await caught_up(log, topics)
            await tg.start(supervise, second, restarts)  # takes a partition from `first`
            await submit(log, topics, 10, 20)
            await caught_up(log, topics)
            first_only.cancel_scope.cancel()  # `first` stops: `second` takes everything
        await submit(log, topics, 20, 30)
        await submit(log, topics, 25, 30)  # late retries of sequenced messages
        await caught_up(log, topics)
        tg.cancel_scope.cancel()
    rows = await sequenced(log, topics, 30 * len(CHATS))
    for chat in CHATS:
        mine = [(seq, body) for c, seq, body in rows if c == chat]
        assert mine == [(i + 1, f"{chat}:{i}") for i in range(30)], chat
    assert first.stats.sequenced + second.stats.sequenced == 30 * len(CHATS)
    assert first.stats.sequenced > 0 and second.stats.sequenced > 0
