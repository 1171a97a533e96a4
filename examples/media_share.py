"""Share a photo: alice uploads it and sends it, bob receives it and downloads it.

    chatcore serve --dev &                                    # a server, in dev mode
    python -m examples.media_share ws://127.0.0.1:8000/ws \\
        "$(chatcore token alice --dev)" "$(chatcore token bob --dev)" photo.jpg

The upload goes over HTTP (``POST /media`` with alice's token); the message refers
to the blob by id; bob's copy of the message carries a short-lived signed URL, which
``download`` follows (and renews if it has expired).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from chatcore.client import ChatClient, MessageReceived


async def share(url: str, alice_token: str, bob_token: str, path: str | Path) -> bytes:
    """Send the file at ``path`` from alice to bob; the bytes bob downloaded."""
    async with (
        ChatClient.connect(url, token=alice_token, device="example") as alice,
        ChatClient.connect(url, token=bob_token, device="example") as bob,
    ):
        assert bob.user is not None  # known once connected
        chat = (await alice.create_direct(bob.user)).chat
        upload = await alice.upload(path)  # the server sniffs the type, checks the size
        print(f"uploaded {upload.blob[:12]}…: {upload.kind}, {upload.mime}, {upload.size} bytes")
        await alice.send(chat, "for you", kind=upload.message_kind, attachment=upload.attachment())
        async for event in bob:
            if isinstance(event, MessageReceived) and event.message.attachment is not None:
                data = await bob.download(event.message)
                if event.message.attachment.thumbnail is not None:
                    thumb = await bob.download(event.message, thumbnail=True)
                    print(f"bob got a {len(thumb)}-byte thumbnail")
                print(f"bob downloaded {len(data)} bytes of {event.message.attachment.name}")
                return data
    raise RuntimeError("the client stopped before the photo arrived")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    anyio.run(share, sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]))
