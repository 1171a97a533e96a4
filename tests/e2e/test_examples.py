"""The examples in examples/ work against a real server."""

from __future__ import annotations

import anyio
import pytest

from examples.echo_bot import run_bot
from tests.client.harness import device, wait_until
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio


async def test_echo_bot_answers(server: RunningServer) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bot, server.ws_url, server.token("echo"))
        async with device(server.ws_url, server.token("alice")) as alice:
            chat = (await alice.client.create_direct("echo")).chat
            await alice.client.send(chat, "hello")
            await alice.client.send(chat, "again")
            await wait_until(
                lambda: (
                    [m.body for m in alice.messages[chat] if m.sender == "echo"]
                    == ["echo: hello", "echo: again"]
                ),
                timeout_s=20,
                what="the bot's answers",
            )
        tg.cancel_scope.cancel()


async def test_groups_example_follows_the_rules(server: RunningServer) -> None:
    from examples.groups import tour

    seen = await tour(server.ws_url, server.token)
    assert seen["created"] == ("alice", ["alice"], False)
    assert "only an admin" in seen["bob removes carol"]
    assert seen["admins"] == ["alice", "bob"]
    assert seen["after alice left"] == (["bob", "carol", "dave"], ["bob"])
    assert seen["after bob left"] == (["carol", "dave"], ["carol"])
    assert seen["dave sees"] == ["welcome, dave"]


async def test_messages_example_shows_the_current_state(server: RunningServer) -> None:
    from examples.messages import tour

    seen = await tour(server.ws_url, server.token)
    state = [(1, "", False, True, []), (2, "bring the book", True, False, ["👍 bob"])]
    assert seen["live"] == seen["history"] == state
    assert seen["events"] == [(3, "edit", 2), (4, "react", 2), (5, "delete", 1)]
    assert "only the author" in seen["bob edits alice's"]
    assert "no message" in seen["bob reacts to seq 99"]
    assert seen["unread for bob"] == 2  # the two messages; the changes are not unread
