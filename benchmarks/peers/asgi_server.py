"""A trivial ASGI WebSocket app on uvicorn: the floor of any server chatcore's is built on.

It accepts every WebSocket and holds it until the client leaves, with the same
uvicorn, WebSocket implementation and settings as ``chatcore serve``. The idle
scenario measures it next to chatcore, so the report can tell uvicorn's memory per
connection from chatcore's own.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app"]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket" or (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass
