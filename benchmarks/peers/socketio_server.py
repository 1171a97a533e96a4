"""python-socketio on uvicorn (ASGI) with rooms: the peer for fanout and latency.

It does what the chat workload needs and nothing more: ``join`` puts the socket in
a room (acknowledged), ``send`` emits the payload to everyone in the room, the
sender included (as chatcore delivers to the sender's devices), and acknowledges
once emitted, as chatcore answers ``accepted``.
"""

from __future__ import annotations

from typing import Any

import socketio  # type: ignore[import-untyped]

__all__ = ["create_app"]


def create_app() -> Any:
    """The ASGI app of a Socket.IO server with ``join`` and ``send`` events."""
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", logger=False)

    @sio.on("join")  # type: ignore[untyped-decorator]
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return "ok"

    @sio.on("send")  # type: ignore[untyped-decorator]
    async def send(sid: str, data: dict[str, str]) -> str:
        await sio.emit("message", data["body"], room=data["room"])
        return "ok"

    return socketio.ASGIApp(sio)
