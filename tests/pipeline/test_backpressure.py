"""Admission follows delivery (issue 11): past a delivery backlog, sends are refused."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest, Overloaded
from chatcore.gateway.session import error_frame
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.backpressure import Backpressure
from chatcore.pipeline.stages import Role

pytestmark = pytest.mark.anyio

NO_DELIVERY: frozenset[Role] = frozenset({"gateway", "sequencer", "history", "receipts"})


@pytest.fixture(params=["memory", "sqlite"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Backends:
    if request.param == "memory":
        return Backends.in_memory()
    return Backends.embedded(tmp_path / "data")


async def test_sends_are_refused_while_delivery_is_stalled_and_taken_once_it_catches_up(
    backends: Backends,
) -> None:
    options = NodeOptions(
        partitions=2, roles=NO_DELIVERY, max_delivery_backlog=5, backlog_sample_s=0
    )
    async with ChatNode(backends, options) as node:
        chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
        for i in range(5):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
        log, submitted = node.backends.log, node.topics.submitted
        before = await log.end_offsets(submitted)
        for i in range(5, 8):
            with pytest.raises(Overloaded) as refused:
                await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
            assert refused.value.retriable and refused.value.retry_after_ms > 0
        assert await log.end_offsets(submitted) == before  # nothing appended
        again = await node.send("alice", chat.chat_id, client_msg_id="m0", body="x")
        assert again.duplicate  # a retry of an accepted message is still answered
        async with anyio.create_task_group() as tg:
            await tg.start(node.delivery_worker.run)  # the stage catches up
            assert await node.delivery_progress.caught_up(timeout_s=10)
            accepted = await node.send("alice", chat.chat_id, client_msg_id="m5", body="x")
            assert not accepted.duplicate
            tg.cancel_scope.cancel()
        await node.settled()
        page = await node.history("bob", chat.chat_id)
        assert [m.client_msg_id for m in page.messages] == [f"m{i}" for i in range(6)]


async def test_the_backlog_is_sampled_and_admitted_sends_count_in_between() -> None:
    reads: list[int] = []
    now = [0.0]

    async def backlog() -> int:
        reads.append(0)
        return 0

    gate = Backpressure(backlog, max_backlog=3, sample_s=1.0, clock=lambda: now[0])
    for _ in range(3):
        await gate.admit()
    with pytest.raises(Overloaded):
        await gate.admit()
    assert len(reads) == 1 and gate.refused == 1
    now[0] = 1.0
    await gate.admit()  # read again: drained
    assert len(reads) == 2


def test_the_bound_has_a_safe_default_and_is_checked() -> None:
    assert NodeOptions().max_delivery_backlog == 5_000
    assert ChatNode.in_memory(max_delivery_backlog=None).backpressure is None
    for bad in ({"max_delivery_backlog": 0}, {"backlog_sample_s": -1.0}):
        with pytest.raises(InvalidRequest):
            ChatNode.in_memory(**bad)

    async def backlog() -> int:
        return 0

    for args in ({"max_backlog": 0}, {"retry_after_ms": 0}, {"sample_s": float("nan")}):
        with pytest.raises(InvalidRequest, match=next(iter(args))):
            Backpressure(backlog, **{"max_backlog": 1, **args})  # type: ignore[arg-type]


def test_an_overloaded_refusal_reaches_the_wire_with_its_retry_after() -> None:
    frame = error_frame(Overloaded("busy", retry_after_ms=750), 9)
    assert (frame.id, frame.code, frame.retry_after_ms) == (9, "overloaded", 750)
