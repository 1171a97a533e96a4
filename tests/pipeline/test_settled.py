"""ChatNode.settled() and ChatNode.lag(): the pipeline's progress read from the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskStatus

from chatcore.backends import Backends
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.stages import DELIVERY, HISTORY, RECEIPTS, SEQUENCER, STAGES, Role
from chatcore.pipeline.workers import HistoryWorker

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Backends:
    if request.param == "memory":
        return Backends.in_memory()
    return Backends.embedded(tmp_path / "data")


@pytest.fixture
async def node(backends: Backends) -> AsyncIterator[ChatNode]:
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        yield node


async def test_settled_returns_once_every_stage_has_done_its_work(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
    for i in range(5):
        await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body=f"{i}")
    await node.receipt("bob", chat.chat_id, "delivered", 2)
    await node.settled()
    page = await node.history("bob", chat.chat_id)  # stored: no polling
    assert [m.body for m in page.messages] == ["0", "1", "2", "3", "4"]
    assert await node.backends.offline.pending("bob")  # delivered (bob was offline)
    (state,) = await node.chats("bob")
    assert (state.last_seq, state.delivered_seq, state.unread) == (5, 2, 5)
    assert set((await node.lag()).values()) == {0}


async def test_settled_with_nothing_sent_returns_at_once(node: ChatNode) -> None:
    with anyio.fail_after(1):
        await node.settled()


async def test_settled_names_a_stage_that_does_not_consume(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stuck(self: HistoryWorker, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        await anyio.sleep_forever()

    monkeypatch.setattr(HistoryWorker, "run", stuck)
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        await node.send("alice", chat.chat_id, client_msg_id="m", body="x")
        with pytest.raises(TimeoutError, match=r"stage 'history' \(group 'chatcore.history'\)"):
            await node.settled(timeout_s=0.3)
        lag = await node.lag()
        assert (lag[SEQUENCER], lag[HISTORY], lag[RECEIPTS]) == (0, 1, 0)


async def test_settled_waits_only_for_the_stages_this_node_runs(backends: Backends) -> None:
    roles: frozenset[Role] = frozenset({"gateway", "sequencer", "delivery", "receipts"})
    async with ChatNode(backends, NodeOptions(partitions=2, roles=roles)) as node:
        assert HISTORY not in node.stages
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        for i in range(3):
            await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
        await node.settled()
        assert await node.lag() == {SEQUENCER: 0, HISTORY: 3, DELIVERY: 0, RECEIPTS: 0}
        assert (await node.history("bob", chat.chat_id)).messages == []


async def test_lag_counts_what_each_stage_has_not_consumed(backends: Backends) -> None:
    async with ChatNode(backends, NodeOptions(partitions=2, roles=frozenset({"gateway"}))) as node:
        assert node.stages == ()
        assert await node.lag() == dict.fromkeys(STAGES, 0)
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        await node.send("alice", chat.chat_id, client_msg_id="a", body="x")
        await node.send("alice", chat.chat_id, client_msg_id="b", body="x")
        await node.receipt("bob", chat.chat_id, "read", 0)  # nothing is sequenced yet
        await node.settled()  # runs no stage: nothing to wait for
        assert await node.lag() == {SEQUENCER: 2, HISTORY: 0, DELIVERY: 0, RECEIPTS: 1}
