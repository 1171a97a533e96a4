"""End-to-end encryption with the SDK: two devices exchange sealed messages.

Runs the reference server in this process (memory backends, dev mode). Alice and
Bob connect with a keyring file each (made on first use, kept in a temporary folder
here), which publishes their device keys; Alice sends with ``encrypted=True`` and
Bob's client hands him the opened text, while the server only ever holds the
envelope. Then Bob rotates his key and Alice's next message is sealed for the new
one. Run it::

    python -m examples.e2ee_chat
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio

from chatcore.client import ChatClient, MessageReceived
from chatcore.e2ee import decode_envelope
from chatcore.e2ee.scheme import fingerprint
from chatcore.server import ServerSettings
from chatcore.server.run import build_server


async def next_text(client: ChatClient) -> str | None:
    """The text of the next message delivered to ``client``."""
    async for event in client.events():
        if isinstance(event, MessageReceived):
            return event.text
    return None


async def main() -> dict[str, Any]:
    settings = ServerSettings(data_dir=None, dev=True)
    server = build_server(settings, port=0, log_level="warning", gc_tuning=False)
    seen: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as keys:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            while not server.started:  # noqa: ASYNC110 (uvicorn has no started event)
                await anyio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            url, chat_server = f"ws://127.0.0.1:{port}/ws", server.chat
            alice = ChatClient(
                url,
                token=chat_server.authority.issue("alice"),
                device="laptop",
                keyring=Path(keys) / "alice-laptop.keys",
            )
            bob = ChatClient(
                url,
                token=chat_server.authority.issue("bob"),
                device="phone",
                keyring=Path(keys) / "bob-phone.keys",
            )
            async with alice, bob:
                chat = (await alice.create_direct("bob")).chat
                bobs_keys = (await alice.fetch_keys(["bob"]))["bob"]
                seen["bob's fingerprint"] = fingerprint(bobs_keys[0].public_key)
                await alice.send(chat, "the password is swordfish", encrypted=True)
                seen["bob read"] = await next_text(bob)
                await chat_server.node.settled()
                (stored,) = (await chat_server.node.history("alice", chat)).messages
                envelope = decode_envelope(stored.body)
                seen["the server holds"] = f"{len(stored.body)} characters of envelope"
                seen["sealed for"] = sorted((k.user, k.device, k.version) for k in envelope.keys)

                seen["bob rotated to"] = await bob.rotate_key()
                await alice.send(chat, "new key, same chat", encrypted=True)
                seen["bob read after rotating"] = await next_text(bob)
            server.should_exit = True
    for key, value in seen.items():
        print(f"{key}: {value}")
    return seen


if __name__ == "__main__":
    anyio.run(main)
