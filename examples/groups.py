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
from examples.dev_server import run_tour


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
    return await run_tour(tour)


if __name__ == "__main__":
    anyio.run(main)
