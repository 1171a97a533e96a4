"""Push over the wire: a phone registers its push token, goes offline, and is told.

Runs the reference server in this process with a ``[push]`` setting (a signed
webhook to a receiver on 127.0.0.1, the one of ``examples/push_webhook.py``). Bob's
phone connects with the SDK, registers its FCM token (``push.register``) and
disconnects; Alice writes; the receiver gets "1 new message from alice". Then the
phone unregisters (``push.unregister``). With ``fcm_service_account_file`` set
instead of (or beside) the webhook, the same token would be pushed through FCM.
Run it::

    python -m examples.push_devices
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import uvicorn

from chatcore.client import ChatClient
from chatcore.push import PushConfig
from chatcore.server import ServerSettings
from chatcore.server.run import build_server
from examples.push_webhook import SECRET, Receiver


async def main() -> dict[str, Any]:
    receiver = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    hook = uvicorn.Server(uvicorn.Config(receiver.app, log_level="warning", lifespan="off"))
    push = PushConfig(
        webhook_url=f"http://127.0.0.1:{sock.getsockname()[1]}/push", webhook_secret=SECRET
    )
    settings = ServerSettings(data_dir=None, dev=True, push=push)
    server = build_server(settings, port=0, log_level="warning", gc_tuning=False)
    seen: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(hook.serve, [sock])
        tg.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110 (uvicorn has no started event)
            await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url, chat_server = f"ws://127.0.0.1:{port}/ws", server.chat
        tokens = chat_server.node.backends.push_tokens

        bob = chat_server.authority.issue("bob")
        async with ChatClient(url, token=bob, device="phone") as phone:
            await phone.register_push("fcm", "bobs-fcm-registration-token")
        seen["registered"] = [(t.device, t.kind) for t in await tokens.targets(["bob"])]

        alice = ChatClient(url, token=chat_server.authority.issue("alice"), device="laptop")
        async with alice:
            chat = await alice.create_direct("bob")
            await alice.send(chat.chat, "the train is late")
            await receiver.wait_for(1)
        seen["pushed"] = [(n["user"], n["title"], n["body"]) for n in receiver.received]

        async with ChatClient(url, token=bob, device="phone") as phone:
            await phone.unregister_push()
        seen["after_unregister"] = await tokens.targets(["bob"])
        server.should_exit = hook.should_exit = True
    for key, value in seen.items():
        print(f"{key}: {value}")
    return seen


if __name__ == "__main__":
    anyio.run(main)
