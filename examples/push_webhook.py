"""Push notifications to your own service: a chat node with a signed webhook.

Runs a receiver on 127.0.0.1 that checks each request with ``verify_webhook``, and a
chat node whose push notifier POSTs to it. Alice writes to Bob, who has no device
connected: the receiver gets "1 new message from alice" with the preview at once;
then an end-to-end encrypted message, which arrives without one when the coalescing
window (2 s) has passed. Run it::

    python -m examples.push_webhook
"""

from __future__ import annotations

import socket
import time
from typing import Any

import anyio
import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatcore.backends import Backends
from chatcore.e2ee.scheme import DeviceKeyring, encrypt
from chatcore.errors import Unauthorized
from chatcore.node import ChatNode
from chatcore.push import verify_webhook
from chatcore.push.webhook import WebhookPushNotifier

SECRET = "change-me-to-32-random-bytes-pls"


class Receiver:
    """Your service's endpoint: refuses what it cannot verify, keeps the rest."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.changed = anyio.Event()
        self.app = Starlette(routes=[Route("/push", self.push, methods=["POST"])])

    async def push(self, request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature covers exactly these
        try:
            verify_webhook(SECRET, request.headers, body, now_s=time.time())
        except Unauthorized:
            return Response(status_code=401)
        self.received.extend(msgspec.json.decode(body)["notifications"])
        self.changed.set()
        self.changed = anyio.Event()
        return Response(status_code=204)

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(10):
            while len(self.received) < count:
                await self.changed.wait()


async def main() -> list[dict[str, Any]]:
    receiver = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/push"
    server = uvicorn.Server(uvicorn.Config(receiver.app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        backends = Backends.in_memory()
        backends.push = WebhookPushNotifier(url, secret=SECRET)
        async with ChatNode(backends) as node:
            chat = await node.create_chat("alice", kind="direct", members=["alice", "bob"])
            await node.send("alice", chat.chat_id, client_msg_id="m1", body="lunch at 1?")
            await receiver.wait_for(1)
            # Within the 2-second coalescing window: this push goes out when it ends.
            # An end-to-end encrypted message (docs/encryption.md): its push has no preview.
            bob = DeviceKeyring.generate("phone")
            await node.publish_key("bob", "phone", version=1, public_key=bob.public_key)
            keys = (await node.fetch_chat_keys("alice", chat.chat_id))["bob"]
            sealed = encrypt(
                "x", chat=chat.chat_id, sender="alice", sender_device="d", recipients=keys
            )
            await node.send("alice", chat.chat_id, client_msg_id="m2", body=sealed, encrypted=True)
            await receiver.wait_for(2)
        server.should_exit = True
    for n in receiver.received:
        print(f"to {n['user']}: {n['title']}" + (f" ({n['body']})" if n["body"] else ""))
    return receiver.received


if __name__ == "__main__":
    anyio.run(main)
