"""An echo bot: answers every message it gets with the same text, in any chat it is in.

    chatcore serve --dev &                                   # a server, in dev mode
    python examples/echo_bot.py ws://127.0.0.1:8000/ws "$(chatcore token echo --dev)"

Then open http://127.0.0.1:8000/, log in as anyone and start a chat with "echo".
The SDK reconnects, resends and catches up by itself; the bot only reacts to events.
"""

from __future__ import annotations

import sys

import anyio

from chatcore.client import ChatClient, MessageReceived


async def run_bot(url: str, token: str, *, device: str = "bot") -> None:
    async with ChatClient.connect(url, token=token, device=device) as client:
        async for event in client:
            if not isinstance(event, MessageReceived):
                continue
            m = event.message
            await client.mark_read(m.chat, m.seq)
            if m.sender != client.user and m.kind == "text" and not m.encrypted:
                await client.send(m.chat, f"echo: {m.body}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    anyio.run(run_bot, sys.argv[1], sys.argv[2])
