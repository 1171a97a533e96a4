"""Losing relaxed offset commits (what a power loss may do on SQLite) only replays.

The SQLite log commits the History, Delivery and Receipt workers' offsets with
``synchronous=NORMAL``: a power loss may take back the newest of them, never an
append or a Sequencer transaction. This test does the worst such loss to a node's
files, every worker's offsets back to zero, between restarts of a node that keeps
receiving messages and receipts, and checks that the replay changes nothing: each
message is in history once with its seq, watermarks never go down, and a client's
device receives every message (duplicates allowed: the SDK drops them by seq).

The replayed messages reach the gateway long after their acceptance, so the bound on
the gateway's delivery lag (``max_delivery_lag_s``) would refuse the sends that follow
each restart for a window (as it should: new messages wait behind the replay); this
test is about the replay, so it runs without that bound.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from chatcore.events import MessageEvent
from chatcore.node import ChatNode
from chatcore.pipeline.stages import DELIVERY, HISTORY, RECEIPTS
from tests.pipeline.history import history

pytestmark = pytest.mark.anyio

WORKER_GROUPS = tuple(stage.group for stage in (HISTORY, DELIVERY, RECEIPTS))


def lose_worker_offsets(data: Path) -> int:
    """Set every worker group's committed offsets back to 0; returns how many were set."""
    with sqlite3.connect(data / "log.db") as conn:
        marks = ", ".join("?" * len(WORKER_GROUPS))
        rows = conn.execute(
            f"SELECT COUNT(*) FROM group_offsets WHERE grp IN ({marks}) AND next_off > 0",
            WORKER_GROUPS,
        ).fetchone()
        conn.execute(f"UPDATE group_offsets SET next_off = 0 WHERE grp IN ({marks})", WORKER_GROUPS)
    return int(rows[0])


async def test_lost_worker_offsets_replay_without_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "node"
    async with ChatNode.embedded(data, partitions=4) as node:
        chats = [
            await node.create_chat("a", kind="direct", members=["b"]),
            await node.create_chat("a", kind="group", members=["b", "c"], title="g"),
        ]
    sent: dict[str, list[str]] = {c.chat_id: [] for c in chats}
    read_marks: dict[tuple[str, str], int] = {}
    lost = 0
    for round_ in range(4):
        async with ChatNode.embedded(data, partitions=4, max_delivery_lag_s=None) as node:
            async with node.connect("b", "phone") as device:
                for chat in chats:
                    for i in range(15):
                        cmid = f"r{round_}-{i}"
                        await node.send("a", chat.chat_id, client_msg_id=cmid, body=cmid)
                        sent[chat.chat_id].append(cmid)
                await node.settled()
                # b reads up to the newest message of each chat
                for chat in chats:
                    last = (await history(node, chat))[-1].seq
                    await node.receipt("b", chat.chat_id, "read", last)
                    read_marks[(chat.chat_id, "b")] = last
                # the device gets every message of this round (and maybe older ones again)
                want = {(c.chat_id, f"r{round_}-{i}") for c in chats for i in range(15)}
                got: set[tuple[str, str]] = set()
                with anyio.fail_after(20):
                    while not want <= got:
                        event = await device.receive()
                        if isinstance(event, MessageEvent):
                            got.add((event.message.chat_id, event.message.client_msg_id))
            await node.settled()
            marks = {
                (c.chat_id, "b"): (await node.backends.receipts.get(c.chat_id, "b")).read_seq
                for c in chats
            }
            assert marks == read_marks
        lost += lose_worker_offsets(data)

    assert lost >= 3  # the workers did commit offsets, and they were taken back
    async with ChatNode.embedded(data, partitions=4) as node:
        await node.settled(timeout_s=20)  # the replay reaches the end of every topic
        for chat in chats:
            messages = await history(node, chat)
            assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
            assert [m.client_msg_id for m in messages] == sent[chat.chat_id]
            theirs = await node.backends.receipts.get(chat.chat_id, "b")
            assert theirs.read_seq == read_marks[(chat.chat_id, "b")]
            own = await node.backends.receipts.get(chat.chat_id, "a")
            assert own.read_seq == messages[-1].seq  # the sender read what they sent
