"""Order and exactly-once of the whole pipeline on SQLite, through repeated crashes.

Many senders write concurrently to many chats of a ChatNode on its SQLite backends.
The node is cancelled again and again and reopened from its files. When it crashes is
counted in events, not in seconds, so the test does the same on a fast machine and on
one where an fsync takes 10 ms: each run crashes after a random number of acknowledged
sends, plus a random number of scheduler steps, so the crash lands with stages
mid-batch and sends mid-append. A send that was not acknowledged is
retried with the same ``client_msg_id``, and some acknowledged ones are retried too.
In the end every accepted message must be in history exactly once, with seq 1..n
per chat and each sender's messages in the order they were sent.
"""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from chatcore.model import ChatInfo
from chatcore.node import ChatNode
from tests.pipeline.history import history

pytestmark = pytest.mark.anyio

USERS = [f"u{i}" for i in range(8)]
PER_SENDER_PER_CHAT = 200


class Plan:
    """What each sender must send, and how far each has got (acknowledged)."""

    def __init__(self, chats: list[ChatInfo]) -> None:
        self.todo = {
            (chat.chat_id, user): [f"{user}:{chat.chat_id}:{i}" for i in range(PER_SENDER_PER_CHAT)]
            for chat in chats
            for user in chat.members
        }
        self.acked: dict[tuple[str, str], int] = dict.fromkeys(self.todo, 0)
        self.retried_acked = 0
        self.crash_due = anyio.Event()
        self._acks_to_crash = 0

    def done(self) -> bool:
        return all(self.acked[k] == len(v) for k, v in self.todo.items())

    def crash_after(self, acks: int) -> None:
        """Set ``crash_due`` once ``acks`` more sends are acknowledged."""
        self.crash_due = anyio.Event()
        self._acks_to_crash = acks

    def ack(self, key: tuple[str, str]) -> None:
        self.acked[key] += 1
        self._acks_to_crash -= 1
        if self._acks_to_crash == 0:
            self.crash_due.set()


async def sender(node: ChatNode, plan: Plan, chat_id: str, user: str, rng: random.Random) -> None:
    key = (chat_id, user)
    cmids = plan.todo[key]
    while plan.acked[key] < len(cmids):
        i = plan.acked[key]
        accepted = await node.send(user, chat_id, client_msg_id=cmids[i], body=cmids[i])
        assert accepted.client_msg_id == cmids[i]
        plan.ack(key)
        if rng.random() < 0.1:  # a client that missed the ack retries an acked send
            await node.send(user, chat_id, client_msg_id=cmids[i], body=cmids[i])
            plan.retried_acked += 1
        await anyio.sleep(0)


async def run_until_crash(data: Path, plan: Plan, rng: random.Random, acks: int) -> None:
    """Run the node and every sender until ``acks`` more sends are acknowledged, then a
    random number of scheduler steps more, and cancel it all: a crash."""
    plan.crash_after(acks)
    steps = rng.randint(0, 50)
    async with anyio.create_task_group() as crash:

        async def crash_when_due() -> None:
            await plan.crash_due.wait()
            for _ in range(steps):
                await anyio.lowlevel.checkpoint()
            crash.cancel_scope.cancel()

        crash.start_soon(crash_when_due)
        async with ChatNode.embedded(data, partitions=4) as node, anyio.create_task_group() as tg:
            for chat_id, user in plan.todo:
                tg.start_soon(sender, node, plan, chat_id, user, random.Random(rng.random()))
        crash.cancel_scope.cancel()  # every send was acknowledged before the crash was due


async def test_order_and_exactly_once_through_repeated_crashes(tmp_path: Path) -> None:
    rng = random.Random(20261128)
    data = tmp_path / "node"
    async with ChatNode.embedded(data, partitions=4) as node:
        chats = [await node.create_chat(USERS[0], kind="direct", members=[USERS[1]])]
        for g in range(4):
            members = rng.sample(USERS, k=rng.randint(3, 6))
            chats.append(
                await node.create_chat(members[0], kind="group", members=members[1:], title=f"g{g}")
            )
    plan = Plan(chats)

    crashes = 0
    with anyio.fail_after(300):  # a run that stops making progress hangs: fail, don't wait
        while not plan.done():
            await run_until_crash(data, plan, rng, acks=rng.randint(1, 300))
            crashes += 1
    assert crashes >= 10, "the workload finished before enough crashes; make it bigger"

    async with ChatNode.embedded(data, partitions=4) as node:
        await node.settled(timeout_s=60)
        stored = {c.chat_id: await history(node, c) for c in chats}

    for chat in chats:
        messages = stored[chat.chat_id]
        assert [m.seq for m in messages] == list(range(1, len(messages) + 1)), chat.chat_id
        cmids = [m.client_msg_id for m in messages]
        assert len(cmids) == len(set(cmids)), f"duplicate in {chat.chat_id}"
        for user in chat.members:
            mine = [m.client_msg_id for m in messages if m.sender == user]
            assert mine == plan.todo[(chat.chat_id, user)], (chat.chat_id, user)
        assert all(m.body == m.client_msg_id for m in messages)
    assert plan.retried_acked > 0
