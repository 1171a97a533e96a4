"""One client WebSocket: the shell around a GatewaySession, on plain ASGI.

One task reads frames and executes the session's actions in order (so a client's
sends reach the log in the order it sent them). A writer task pushes the
connection's events, a burst at a time; it stops once the connection has been idle
for ``WRITER_IDLE_S`` (the server's sweeper interrupts it) and starts again with the
next event, so an idle connection holds no writer, no wait and no event. A
connection closed by the hub as a slow consumer is closed with 4008; at shutdown
with 1001.

A client that stops reading is closed with 4008 by the server's sweeper, by either
of two rules: its unread bytes (what the server and the kernel still hold to send it,
measured by ``chatcore.server.sockets.AbortableWebSocket``) stayed above
``SessionLimits.max_unread_bytes`` for ``unread_timeout_s``
(:meth:`ClientConnection.check_backlog`), or a send waited on it longer than the
host's ``send_timeout_s`` (:meth:`ClientConnection.drop_if_stalled`). Where the ASGI
server offers the ``chatcore.abort`` extension the close frame is queued behind the
backlog without waiting, and the TCP connection is reset if the client has not read
up to it within the host's ``close_grace_s``; elsewhere the connection's tasks are
cancelled. Either way the connection is unregistered and counted as closed with
4008. The same sweeper closes a session whose token expired
(:meth:`ClientConnection.tick`, 4001); the hello deadline has a timer of its own that
sleeps again when it fires early.

This is the hot path of a gateway, so it talks ASGI directly (no framework
wrappers around ``send``), and every event is converted and encoded once per codec,
however many connections it goes to (:class:`~chatcore.server.push.PushFrames`).
Replies and pushes share the socket without a lock: an ASGI ``websocket.send``
carries one whole frame. All a connection needs of its server comes through one
:class:`~chatcore.server.host.ConnectionHost`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from chatcore.errors import ChatcoreClosed, RateLimited
from chatcore.events import MessageEvent
from chatcore.gateway.backlog import UnreadBacklog
from chatcore.gateway.session import (
    Close,
    CloseCode,
    GatewaySession,
    Handle,
    Opened,
    Reply,
    SessionState,
    error_frame,
)
from chatcore.pipeline.hub import LocalConnection
from chatcore.protocol import (
    SUBPROTOCOL_JSON,
    SUBPROTOCOLS,
    AcceptedFrame,
    ErrorFrame,
    ServerFrame,
)
from chatcore.server.handler import RequestHandler
from chatcore.server.host import ConnectionHost
from chatcore.server.push import ASGIMessage, send_message
from chatcore.server.sockets import ABORT_EXTENSION

__all__ = ["WRITER_IDLE_S", "ClientConnection", "ServedConnection"]

logger = logging.getLogger(__name__)

WRITER_IDLE_S = 10.0
"""A connection's writer task stops after this long without an event to push."""


class ServedConnection(Protocol):
    """What the server and its sweeper use of a chat socket, on either path:
    :class:`ClientConnection` (ASGI) or ``chatcore.server.native.NativeConnection``."""

    @property
    def busy(self) -> bool:
        """A request of the client is in progress (draining waits for it)."""
        ...

    @property
    def session(self) -> GatewaySession: ...

    @property
    def conn(self) -> LocalConnection | None:
        """The hub's side of the connection, once ``hello`` opened it."""
        ...

    async def go_away(self) -> None: ...

    async def _close(self, code: int, reason: str) -> None: ...

    def retire_idle_writer(self, now: float) -> None: ...

    def drop_if_stalled(self, now: float) -> bool: ...

    def check_backlog(self, now: float) -> bool: ...

    def tick(self, now: float) -> None: ...

    def close_unauthorized(self, reason: str) -> None: ...


Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]


class ClientConnection:
    """Runs one WebSocket (an ASGI ``websocket`` scope) until either side closes it."""

    __slots__ = (
        "_abort",
        "_backlog",
        "_close_now",
        "_closed",
        "_hello_wait",
        "_last_push",
        "_receive",
        "_send_asgi",
        "_send_started",
        "_tg",
        "_unread",
        "_writer_stop",
        "_writing",
        "busy",
        "conn",
        "host",
        "session",
        "subprotocol",
    )

    def __init__(self, host: ConnectionHost, scope: ASGIMessage, receive: Receive, send: Send):
        self.host = host
        self._receive = receive
        self._send_asgi = send
        self.busy = False
        self.conn: LocalConnection | None = None
        self._closed = False
        self._hello_wait = anyio.CancelScope()  # cancelled at hello: no task left sleeping
        self._tg: anyio.abc.TaskGroup | None = None
        self._writing = False
        self._writer_stop: anyio.CancelScope | None = None
        self._last_push = 0.0
        self._send_started = 0.0  # when the send in progress began (0: none)
        extension = (scope.get("extensions") or {}).get(ABORT_EXTENSION)
        self._abort: Callable[[], None] | None = None
        self._unread: Callable[[], int] | None = None
        self._close_now: Callable[[int, str, float], None] | None = None
        if extension:
            self._abort = extension["abort"]
            self._unread = extension.get("unread")
            self._close_now = extension.get("close")
        limits = host.limits
        self._backlog = UnreadBacklog(limits.max_unread_bytes, limits.unread_timeout_s)
        offered = scope.get("subprotocols") or []
        self.subprotocol = next((p for p in offered if p in SUBPROTOCOLS), None)
        self.session = host.session(self.subprotocol or SUBPROTOCOL_JSON, now=time.monotonic())

    async def run(self) -> None:
        """Accept the WebSocket (its ``websocket.connect`` was received) and serve it."""
        await self._send_asgi({"type": "websocket.accept", "subprotocol": self.subprotocol})
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._hello_deadline)
                await self._read(tg)
                self._stop_tasks(tg)
        finally:
            self._tg = None  # no writer can start any more (closing wakes the hook)
            if self.conn is not None:
                await self.host.close(self.conn)

    def _stop_tasks(self, tg: anyio.abc.TaskGroup) -> None:
        """Stop the hello timer and the writer through their own cancel scopes, and
        anything else (a close in progress) at the grace's end.

        Cancelling the task group's scope instead would end each task with a
        CancelledError, which anyio's task-done callback keeps in a reference cycle
        with its traceback, whose frames hold this connection, its session, its
        LocalConnection and the ASGI server's protocol: every closed connection
        became garbage that only the cyclic collector frees, and ``chatcore serve``
        runs it rarely (``chatcore._gc``), so RSS climbed by thousands of closed
        connections between collections (the soak, docs/reliability.md)."""
        self._tg = None  # no writer can start any more
        self._hello_wait.cancel()
        if self._writer_stop is not None:
            self._writer_stop.cancel()
        tg.cancel_scope.deadline = anyio.current_time() + self.host.close_grace_s

    async def go_away(self) -> None:
        """Close with 1001 (server going away)."""
        await self._close(CloseCode.GOING_AWAY, "server going away")

    async def _read(self, tg: anyio.abc.TaskGroup) -> None:
        handler: RequestHandler | None = None
        while not self._closed:
            try:
                message = await self._receive()
            except OSError:
                return
            if message["type"] != "websocket.receive":
                return  # websocket.disconnect
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
                if data is None:
                    continue
            if self.host.draining:
                continue
            self.busy = True
            try:
                for action in self.session.receive(data, now=time.monotonic()):
                    match action:
                        case Reply(frame=frame):
                            await self._reply(frame)
                        case Close(code=code, reason=reason):
                            await self._close(code, reason)
                            return
                        case Opened(user=user, device=device, request_id=rid):
                            self._hello_wait.cancel()
                            try:
                                self.conn, handler = await self.host.open(user, device)
                            except RateLimited as exc:
                                await self._reply(error_frame(exc, rid))
                                await self._close(CloseCode.POLICY_VIOLATION, exc.message)
                                return
                            self.conn.when_ready(self._start_writer)
                            self._start_writer()
                        case Handle(frame=request):
                            assert handler is not None
                            for frame in await handler.handle(request):
                                await self._reply(frame)
            finally:
                self.busy = False

    def retire_idle_writer(self, now: float) -> None:
        """Stop the writer if it has waited ``WRITER_IDLE_S`` (the sweeper calls this)."""
        conn = self.conn
        if conn is not None and conn.waiting and now - self._last_push >= WRITER_IDLE_S:
            conn.interrupt()

    def _start_writer(self) -> None:
        if not self._writing and self._tg is not None and self.conn is not None:
            self._writing = True
            self._last_push = time.monotonic()
            self._tg.start_soon(self._push, self.conn)

    async def _push(self, conn: LocalConnection) -> None:
        try:
            with anyio.CancelScope() as self._writer_stop:  # cancelled by _stop_tasks
                await self._push_until_idle(conn)
        finally:
            self._writing = False
            self._writer_stop = None

    async def _push_until_idle(self, conn: LocalConnection) -> None:
        frames = self.host.push_frames
        codec = self.session.codec
        delivered = self.host.metrics.delivered
        while True:
            try:
                events = await conn.receive_many()
            except ChatcoreClosed:
                if conn.close_reason == "slow_consumer":
                    reason = "slow consumer: reconnect and sync"
                    await self._close(CloseCode.SLOW_CONSUMER, reason)
                elif conn.close_reason == "shutdown":
                    await self.go_away()
                return
            if not events:  # interrupted by the sweeper: idle
                return
            messages = 0
            for event in events:
                messages += isinstance(event, MessageEvent)
                await self._write(frames.message(event, codec))
            if messages:
                delivered.inc(messages)
            self._last_push = time.monotonic()

    def tick(self, now: float) -> None:
        """Run the session's time-driven rules (the sweeper calls this): a session
        whose token expired is closed with 4001. The close runs in the connection's
        own tasks, so a client that does not read never holds up the caller."""
        for action in self.session.tick(now=now):
            if isinstance(action, Close):
                self._close_soon(action.code, action.reason)

    def close_unauthorized(self, reason: str) -> None:
        """Close with 4001 (the token was revoked), in the connection's own tasks."""
        self.session.close()
        self._close_soon(CloseCode.UNAUTHORIZED, reason)

    def _close_soon(self, code: int, reason: str) -> None:
        if self._tg is not None and not self._closed:
            self._tg.start_soon(self._close, code, reason)

    def drop_if_stalled(self, now: float) -> bool:
        """Close the connection with 4008 if a send has waited ``send_timeout_s`` on the
        client (it stopped reading); True if it did."""
        started = self._send_started
        if not started or now - started < self.host.send_timeout_s:
            return False
        logger.info("dropping a connection that stopped reading (send waited %.1fs)", now - started)
        self._send_started = 0.0
        self._close_slow("slow consumer: a send waited too long; reconnect and sync")
        return True

    def check_backlog(self, now: float) -> bool:
        """Close the connection with 4008 if its unread bytes have stayed above
        ``max_unread_bytes`` for ``unread_timeout_s`` (the sweeper calls this); True if
        it did. Without the ``chatcore.abort`` extension there is nothing to measure."""
        if self._unread is None or self._closed:
            return False
        if not self._backlog.observe(self._unread(), now):
            return False
        logger.info("closing a connection that stopped reading (unread bytes above the limit)")
        self._close_slow("slow consumer: too much unread; reconnect and sync")
        return True

    def _close_slow(self, reason: str) -> None:
        """Close with 4008 now, whatever the socket's state: the close frame is queued
        behind the backlog and the connection reset after ``close_grace_s`` if the
        client has not read up to it (the reader sees the disconnect; run()
        unregisters). Without the extension, the connection's tasks are cancelled."""
        first = not self._closed
        if first:
            self._closed = True
            self.session.close()
            self.host.metrics.closes.labels(str(int(CloseCode.SLOW_CONSUMER))).inc()
        if first and self._close_now is not None:
            self._close_now(int(CloseCode.SLOW_CONSUMER), reason, self.host.close_grace_s)
        elif self._abort is not None:  # a close of its own is stuck: reset
            self._abort()
        elif self._tg is not None:
            self._tg.cancel_scope.cancel()

    async def _hello_deadline(self) -> None:
        session = self.session
        with self._hello_wait:
            while session.state is SessionState.AWAITING_HELLO:
                due = session.deadline()
                assert due is not None
                await anyio.sleep(max(0.0, due - time.monotonic()))  # may wake a bit early
                for action in session.tick(now=time.monotonic()):
                    if isinstance(action, Close):
                        await self._close(action.code, action.reason)

    async def _reply(self, frame: ServerFrame) -> None:
        metrics = self.host.metrics
        if isinstance(frame, AcceptedFrame):
            metrics.accepted.inc()
        elif isinstance(frame, ErrorFrame):
            metrics.errors.labels(frame.code).inc()
        codec = self.session.codec
        await self._write(send_message(codec, codec.encode_server(frame)))

    async def _write(self, message: ASGIMessage) -> None:
        if self._closed:
            return
        self._send_started = time.monotonic()
        try:
            await self._send_asgi(message)
        except (RuntimeError, OSError):  # the client is gone (uvicorn: ClientDisconnected)
            self._closed = True
        finally:
            self._send_started = 0.0

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.session.close()
        self.host.metrics.closes.labels(str(code)).inc()
        self._send_started = time.monotonic()
        try:
            with contextlib.suppress(RuntimeError, OSError):
                await self._send_asgi({"type": "websocket.close", "code": code, "reason": reason})
        finally:
            self._send_started = 0.0
