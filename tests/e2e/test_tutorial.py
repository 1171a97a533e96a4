"""The tutorial's terminal chat (examples/terminal_chat.py) against a dev server."""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from chatcore.server import ServerSettings
from examples.terminal_chat import dev_login, talk
from tests.client.harness import device, wait_until
from tests.e2e.conftest import running

pytestmark = pytest.mark.anyio


async def test_terminal_chat_talks_with_a_friend() -> None:
    async with running(ServerSettings(data_dir=None, dev=True)) as server:
        token = await anyio.to_thread.run_sync(dev_login, server.http_url, "alice")
        shown: list[str] = []
        typed, lines = anyio.create_memory_object_stream[str](10)
        async with (
            device(server.ws_url, server.token("bob")) as bob,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(talk, server.ws_url, token, "bob", lines, shown.append)
            await typed.send("hi bob")
            await wait_until(
                lambda: [m.body for chat in bob.messages.values() for m in chat] == ["hi bob"],
                what="bob gets alice's line",
            )
            (chat,) = bob.messages
            await bob.client.typing(chat)
            await bob.client.send(chat, "hi alice")
            await wait_until(lambda: "bob: hi alice" in shown, what="alice sees bob's answer")
            assert "(bob is typing)" in shown
            await wait_until(
                lambda: "(bob is online)" in shown, what="bob's presence, once he wrote"
            )
            assert shown[0] == "(bob is offline)"  # before bob took part, his presence is private
            await typed.aclose()  # end of input: talk() returns


async def test_dev_login_is_refused_when_dev_mode_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATCORE_SECRET", "s" * 40)
    async with running(ServerSettings(data_dir=None, dev=False)) as server:
        with pytest.raises(OSError, match="404"):
            await anyio.to_thread.run_sync(dev_login, server.http_url, "alice")
