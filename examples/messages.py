"""Edit, delete and react over the wire, and what history shows afterwards.

Runs the reference server in this process (dev mode, in memory) and two SDK
clients: Alice writes, fixes a typo, Bob reacts, Alice deletes a message, Bob
tries to edit Alice's (refused), and both read the chat's current state. Run it::

    python -m examples.messages
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from chatcore.client import ChatClient, MessageReceived, apply_change
from chatcore.errors import InvalidRequest, NotFound
from chatcore.protocol import Message
from examples.dev_server import run_tour

CHANGES = {"edit", "delete", "react", "unreact"}  # lifecycle events: applied, not shown


async def tour(url: str, token: Callable[[str], str]) -> dict[str, Any]:
    """Walk through docs/messages.md; returns what each step showed."""
    seen: dict[str, Any] = {}
    alice = ChatClient(url, token=token("alice"), device="laptop")
    bob = ChatClient(url, token=token("bob"), device="phone")
    async with alice, bob:
        chat = (await alice.create_direct("bob")).chat
        await alice.send(chat, "see you at 8")
        await alice.send(chat, "bring the bok")
        await alice.edit(chat, 2, "bring the book")
        await bob.react(chat, 2, "👍")
        await alice.delete(chat, 1)
        try:
            await bob.edit(chat, 2, "bring cake")
        except InvalidRequest as exc:
            seen["bob edits alice's"] = str(exc)
        try:
            await bob.react(chat, 99, "👍")
        except NotFound as exc:
            seen["bob reacts to seq 99"] = str(exc)

        # Bob's device applies each change it receives live to the message it targets.
        shown: dict[int, Message] = {}
        with anyio.fail_after(10):
            async for event in bob.events():
                if not isinstance(event, MessageReceived) or event.chat != chat:
                    continue
                m = event.message
                if m.kind not in CHANGES:
                    shown[m.seq] = m
                elif m.target in shown:
                    shown[m.target] = apply_change(shown[m.target], m)
                if m.seq == 5:  # the delete: the last change
                    break
        seen["live"] = [_view(m) for m in shown.values()]
        page = await alice.history_page(chat, after=0)  # after: covers all sequenced
        seen["history"] = [_view(m) for m in page.messages if m.kind not in CHANGES]
        seen["events"] = [(m.seq, m.kind, m.target) for m in page.messages if m.kind in CHANGES]
        seen["unread for bob"] = next(c.unread for c in await bob.chats() if c.chat == chat)
    return seen


def _view(m: Message) -> tuple[int, str, bool, bool, list[str]]:
    reactions = [f"{r.emoji} {','.join(r.users)}" for r in m.reactions]
    return (m.seq, m.body, m.edited_ts is not None, m.deleted, reactions)


async def main() -> dict[str, Any]:
    return await run_tour(tour)


if __name__ == "__main__":
    anyio.run(main)
