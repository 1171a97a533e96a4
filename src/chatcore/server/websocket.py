"""One client WebSocket: the shell around a GatewaySession.

Two tasks per connection: one reads frames and executes the session's actions in
order (so a client's sends reach the log in the order it sent them), the other
pushes the connection's events. A connection closed by the hub as a slow consumer
is closed with 4008; at shutdown with 1001.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from chatcore.errors import ChatcoreClosed
from chatcore.gateway.convert import event_frame
from chatcore.gateway.service import RequestHandler
from chatcore.gateway.session import (
    Close,
    CloseCode,
    GatewaySession,
    Handle,
    Opened,
    Reply,
)
from chatcore.pipeline.events import MessageEvent
from chatcore.pipeline.hub import LocalConnection
from chatcore.protocol import (
    SUBPROTOCOL_JSON,
    SUBPROTOCOLS,
    Accepted,
    ErrorFrame,
    ServerFrame,
    codec_for,
)

if TYPE_CHECKING:
    from chatcore.server.app import ChatServer

__all__ = ["ClientConnection"]

logger = logging.getLogger("chatcore.server")


class ClientConnection:
    """Runs one accepted WebSocket until either side closes it."""

    def __init__(self, server: ChatServer, websocket: WebSocket) -> None:
        self.server = server
        self.websocket = websocket
        self.busy = False
        self.conn: LocalConnection | None = None
        self._send_lock = anyio.Lock()
        self._closed = False
        offered = websocket.scope.get("subprotocols") or []
        self.subprotocol = next((p for p in offered if p in SUBPROTOCOLS), None)
        codec = codec_for(
            self.subprotocol or SUBPROTOCOL_JSON,
            max_frame_bytes=server.settings.max_frame_bytes,
        )
        self.session = GatewaySession(
            codec,
            server.authority.verify,
            now=time.monotonic(),
            limits=server.settings.limits,
            send_limiter=server.send_limiter,
        )

    async def run(self) -> None:
        await self.websocket.accept(subprotocol=self.subprotocol)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._hello_deadline)
                await self._read(tg)
                tg.cancel_scope.cancel()
        finally:
            if self.conn is not None:
                self.server.metrics.connections.dec()
                await self.conn.aclose()

    async def go_away(self) -> None:
        """Close with 1001 (server going away)."""
        await self._close(CloseCode.GOING_AWAY, "server going away")

    async def _read(self, tg: anyio.abc.TaskGroup) -> None:
        handler: RequestHandler | None = None
        while not self._closed:
            try:
                message = await self.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") if message.get("bytes") is not None else message.get("text")
            if data is None:
                continue
            if self.server.draining:
                continue
            self.busy = True
            try:
                for action in self.session.receive(data, now=time.monotonic()):
                    match action:
                        case Reply(frame=frame):
                            await self._send(frame)
                        case Close(code=code, reason=reason):
                            await self._close(code, reason)
                            return
                        case Opened(user=user, device=device):
                            self.conn = await self.server.node.open_connection(user, device)
                            self.server.metrics.connections.inc()
                            handler = RequestHandler(self.server.node, self.conn)
                            tg.start_soon(self._push, self.conn)
                        case Handle(frame=request):
                            assert handler is not None
                            for frame in await handler.handle(request):
                                await self._send(frame)
            finally:
                self.busy = False

    async def _push(self, conn: LocalConnection) -> None:
        metrics = self.server.metrics
        while True:
            try:
                event = await conn.receive()
            except ChatcoreClosed:
                if conn.close_reason == "slow_consumer":
                    await self._close(CloseCode.SLOW_CONSUMER, "slow consumer: reconnect and sync")
                elif conn.close_reason == "shutdown":
                    await self._close(CloseCode.GOING_AWAY, "server going away")
                return
            if isinstance(event, MessageEvent):
                metrics.delivered.inc()
                metrics.latency.observe(max(0.0, time.time() - event.message.ts / 1000))
            await self._send(event_frame(event))

    async def _hello_deadline(self) -> None:
        await anyio.sleep(self.session.limits.hello_timeout_s)
        for action in self.session.tick(now=time.monotonic()):
            if isinstance(action, Close):
                await self._close(action.code, action.reason)

    async def _send(self, frame: ServerFrame) -> None:
        if self._closed:
            return
        data = self.session.encode(frame)
        metrics = self.server.metrics
        if isinstance(frame, Accepted):
            metrics.accepted.inc()
        elif isinstance(frame, ErrorFrame):
            metrics.errors.labels(frame.code).inc()
        async with self._send_lock:
            try:
                if self.session.codec.binary:
                    await self.websocket.send_bytes(data)
                else:
                    await self.websocket.send_text(data.decode())
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._closed = True

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.session.close()
        self.server.metrics.closes.labels(str(code)).inc()
        async with self._send_lock:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.websocket.close(code=code, reason=reason)
