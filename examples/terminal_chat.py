"""A chat app in 50 lines: chat from a terminal with a friend on the browser page.

chatcore serve --dev &                           # the server, dev login on
python examples/terminal_chat.py alice bob       # you are alice, talking to bob
# then open http://127.0.0.1:8000/ , log in as bob and answer alice
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import AsyncIterable, Callable, Iterable

import anyio
import anyio.to_thread

from chatcore.client import ChatClient, MessageReceived, PresenceChanged, TypingStarted
from chatcore.protocol import PresenceView


def dev_login(server: str, user: str) -> str:
    """A token from the dev server's login endpoint (dev mode only)."""
    body = json.dumps({"user": user}).encode()
    request = urllib.request.Request(f"{server}/api/dev/token", body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["token"])


def presence(states: Iterable[PresenceView]) -> str:
    return " ".join(f"({state.user} is {state.status})" for state in states)


async def talk(
    url: str, token: str, friend: str, lines: AsyncIterable[str], show: Callable[[str], None]
) -> None:
    """Send each line to ``friend``; show what they say, when they type, when they come and go."""
    async with ChatClient.connect(url, token=token, device="terminal") as client:
        chat = (await client.create_direct(friend)).chat
        show(presence(await client.subscribe_presence([friend])))

        async def listen() -> None:
            heard = False
            async for event in client:
                match event:
                    case MessageReceived(message=m) if m.chat == chat and m.sender != client.user:
                        show(f"{m.sender}: {m.body}")
                        await client.mark_read(chat, m.seq)
                        if not heard:  # presence shows once they took part: ask again
                            heard = True
                            show(presence(await client.subscribe_presence([friend])))
                    case TypingStarted(chat=c, user=user) if c == chat:
                        show(f"({user} is typing)")
                    case PresenceChanged(states=states):
                        show(presence(states))

        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            async for line in lines:
                if line.strip():
                    await client.send(chat, line.strip())
            tg.cancel_scope.cancel()


async def main(me: str, friend: str, server: str) -> None:
    token = await anyio.to_thread.run_sync(dev_login, server, me)
    ws_url = server.replace("http", "ws", 1) + "/ws"
    await talk(ws_url, token, friend, anyio.wrap_file(sys.stdin), print)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    me, friend, *rest = sys.argv[1:]
    anyio.run(main, me, friend, rest[0] if rest else "http://127.0.0.1:8000")
