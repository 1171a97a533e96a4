"""Group roles over the wire: the creator is admin, members cannot remove others,
anyone leaves, the last admin leaving hands over, and a late joiner sees no history.

Runs the reference server in this process (dev mode, in memory) and three SDK
clients. Run it::

    python -m examples.groups
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from chatcore.client import ChatClient
from chatcore.errors import InvalidRequest
from chatcore.server import ServerSettings
from chatcore.server.run import build_server


async def tour(url: str, token: Callable[[str], str]) -> dict[str, Any]:
    """Walk through the rules of docs/groups.md; returns what each step showed."""
    seen: dict[str, Any] = {}
    alice = ChatClient(url, token=token("alice"), device="laptop")
    bob = ChatClient(url, token=token("bob"), device="phone")
    async with alice, bob:
        group = await alice.create_group("book club", ["bob", "carol"], history_visible=False)
        seen["created"] = (group.creator, group.admins, group.history_visible)
        await alice.send(group.chat, "before dave joins")
        try:
            await bob.update_members(group.chat, remove=["carol"])
        except InvalidRequest as exc:
            seen["bob removes carol"] = str(exc)
        promoted = await alice.update_members(group.chat, promote=["bob"], add=["dave"])
        seen["admins"] = promoted.admins
        await alice.send(group.chat, "welcome, dave")
        left = await alice.leave(group.chat)
        seen["after alice left"] = (left.members, left.admins)
        after_bob = await bob.leave(group.chat)
        seen["after bob left"] = (after_bob.members, after_bob.admins)
    async with ChatClient(url, token=token("dave"), device="tablet") as dave:
        page = await dave.history_page(group.chat, after=0)  # after: covers all sequenced
        seen["dave sees"] = [m.body for m in page.messages]
    return seen


async def main() -> dict[str, Any]:
    server = build_server(
        ServerSettings(data_dir=None, dev=True), port=0, log_level="warning", gc_tuning=False
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110 (uvicorn has no started event)
            await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        seen = await tour(f"ws://127.0.0.1:{port}/ws", server.chat.authority.issue)
        server.should_exit = True
    for key, value in seen.items():
        print(f"{key}: {value}")
    return seen


if __name__ == "__main__":
    anyio.run(main)
