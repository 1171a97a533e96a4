"""Two users chatting through a ChatNode on the embedded backends, printed.

    python examples/demo.py [DATA_DIR]

Everything runs in this process: the Router, the Sequencer over a SQLite log, the
history, delivery and receipt workers, and two device connections. Run it twice with
the same folder and the history carries on where it stopped.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable

import anyio

from chatcore import ChatNode
from chatcore.events import Event, MessageEvent, ReceiptEvent
from chatcore.pipeline.hub import LocalConnection


async def wait_for(conn: LocalConnection, wanted: Callable[[Event], bool]) -> Event:
    with anyio.fail_after(5):
        while not wanted(event := await conn.receive()):
            pass
        return event


def read_by(user: str) -> Callable[[Event], bool]:
    return lambda event: isinstance(event, ReceiptEvent) and event.user == user


async def main(data_dir: str) -> None:
    async with ChatNode.embedded(data_dir) as node:
        chat = await node.create_chat("alice", kind="direct", members=["bob"])
        print(f"chat {chat.chat_id} between {' and '.join(chat.members)} (data in {data_dir})")
        async with node.connect("alice", "laptop") as alice, node.connect("bob", "phone") as bob:
            conns = {"alice": alice, "bob": bob}
            script = [
                ("alice", "bob", "Hi Bob! Lunch today?"),
                ("bob", "alice", "Sure, 12:30?"),
                ("alice", "bob", "Perfect, see you there."),
            ]
            for sender, reader, text in script:
                await node.send(sender, chat.chat_id, client_msg_id=str(uuid.uuid4()), body=text)
                event = await wait_for(conns[reader], lambda e: isinstance(e, MessageEvent))
                assert isinstance(event, MessageEvent)
                m = event.message
                print(f"  [{m.seq:>3}] {m.sender:>5} → {reader:<5} {m.body}  (id {m.message_id})")
                await node.receipt(reader, chat.chat_id, "read", m.seq)
                tick = await wait_for(conns[sender], read_by(reader))
                assert isinstance(tick, ReceiptEvent)
                print(f"        ✓✓ {sender} sees: read by {tick.user} up to seq {tick.seq}")
        for state in await node.chats("bob"):
            print(
                f"bob's chat {state.chat.chat_id}: last seq {state.last_seq}, "
                f"read up to {state.read_seq}, unread {state.unread}"
            )


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "./chatcore-data")
