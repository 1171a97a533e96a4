"""The pipeline reports to its Telemetry: every stage, store writes, presence, receipts, gaps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import anyio
import pytest

from chatcore.backends import Backends
from chatcore.cache import MemoryHotCache
from chatcore.log.memory import MemoryLog
from chatcore.model import StoredMessage
from chatcore.node import ChatNode, NodeOptions
from chatcore.offline.memory import MemoryPushNotifier
from chatcore.pipeline.workers import HistoryWorker
from chatcore.store.memory import MemoryMessageStore, MemoryReceiptStore
from chatcore.telemetry import PipelineStage

pytestmark = pytest.mark.anyio


class Recorder:
    """A Telemetry that keeps every call."""

    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = defaultdict(list)
        self.stores: dict[str, list[float]] = defaultdict(list)
        self.presence: list[float] = []
        self.receipts: list[int] = []
        self.pending: list[int] = []
        self.gaps: list[tuple[str, int]] = []

    def stage_done(self, stage: PipelineStage, accepted_ms: Iterable[int], now_ms: int) -> None:
        self.stages[stage] += [now_ms - ts for ts in accepted_ms]

    def store_write(self, store: str, seconds: float) -> None:
        self.stores[store].append(seconds)

    def presence_update(self, seconds: float) -> None:
        self.presence.append(seconds)

    def receipt_told(self, submitted_ms: Iterable[int], now_ms: int) -> None:
        self.receipts += [now_ms - ts for ts in submitted_ms]

    def offline_pending(self, count: int) -> None:
        self.pending.append(count)

    def gap(self, where: str, missing: int) -> None:
        self.gaps.append((where, missing))


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_message_is_reported_at_every_stage(kind: str, tmp_path: Path) -> None:
    seen = Recorder()
    backends = Backends.in_memory() if kind == "memory" else Backends.embedded(tmp_path / "d")
    backends.push = MemoryPushNotifier()
    options = NodeOptions(partitions=2, telemetry=seen)
    async with ChatNode(backends, options) as node, node.connect("bob", "phone"):
        assert len(seen.presence) == 1  # bob's arrival
        chat = await node.create_chat("alice", kind="group", members=["bob", "carol"])
        for i in range(3):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="hi")
        await node.settled()
        await node.receipt("bob", chat.chat_id, "read", 3)
        await node.settled()
    for stage in ("logged", "sequenced", "stored", "pushed"):
        assert len(seen.stages[stage]) == 3, stage
        assert all(0 <= ms < 60_000 for ms in seen.stages[stage]), stage
    assert seen.stores["messages"] and seen.stores["receipts"]
    assert len(seen.receipts) == 1
    assert len(seen.presence) == 2  # arrival and departure
    assert seen.gaps == []


async def test_a_hole_in_a_chats_sequence_is_reported_as_a_gap() -> None:
    seen = Recorder()
    worker = HistoryWorker(
        MemoryLog(), MemoryMessageStore(), MemoryHotCache(), MemoryReceiptStore(), telemetry=seen
    )

    def message(seq: int) -> StoredMessage:
        return StoredMessage(
            chat_id="c",
            seq=seq,
            message_id=seq,
            sender="a",
            client_msg_id=f"m{seq}",
            kind="text",
            body="x",
            ts=0,
        )

    await worker._handle([message(1), message(2)])
    await worker._handle([message(2), message(5)])  # 2 replayed: fine; 3 and 4 lost
    assert seen.gaps == [("history", 2)]


async def test_the_offline_queue_is_reported() -> None:
    seen = Recorder()
    backends = Backends.in_memory()
    backends.push = MemoryPushNotifier()
    async with ChatNode(backends, NodeOptions(partitions=1, telemetry=seen)) as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        await node.send("alice", chat.chat_id, client_msg_id="m", body="hi")  # bob is offline
        await node.settled()
        with anyio.fail_after(5):
            while not seen.pending:  # reported by the worker's periodic flush
                await anyio.sleep(0.05)
        assert seen.pending[-1] == node.delivery_worker._coalescer.pending
