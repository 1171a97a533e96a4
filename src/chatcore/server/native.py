"""The fast path of ``/ws``: picows (a Cython WebSocket frame parser on asyncio
transports) behind uvicorn's HTTP, on the same port.

uvicorn keeps serving HTTP (the page, ``/api``, ``/media``, ``/metrics``,
``/healthz``, with its header deadline); when a request upgrades to a WebSocket,
:func:`native_websocket` (uvicorn's ``ws`` protocol class) hands a ``/ws`` upgrade
to picows and any other path to uvicorn's own WebSocket protocol (ASGI). The
:class:`NativeConnection` of each socket is a thin shell around the same
:class:`~chatcore.gateway.session.GatewaySession` and
:class:`~chatcore.server.host.ConnectionHost` as the ASGI
:class:`~chatcore.server.websocket.ClientConnection`: every protocol rule (hello
deadline, close codes, frame limits, rate limits, draining) is the session's or the
host's, so both paths behave alike.

What differs is the I/O:

- No task per connection while it is idle or only receives pushes. Frames are read
  in picows' ``on_ws_frame`` callback; a reader task exists only while a request
  awaits the pipeline (a client's frames are still handled in the order it sent them).
- Pushes need no writer task: the hub calls the connection's ``when_ready`` hook,
  which schedules one flush per loop iteration; the flush takes every queued event
  and writes the connection's pending frames, replies included, with **one**
  ``write`` (write batching). Each pushed event is framed once per codec, however
  many connections it goes to.
- A client that said ``batch: true`` in ``hello`` receives several pending frames as
  one WebSocket frame holding an array of frames (see docs/protocol.md, "Batches").
- A client that stops reading fills the transport's buffer: its connection stops
  taking events from the hub (whose queue then overflows: 4008 slow consumer). As on
  the ASGI path, the socket's kernel send buffer is capped
  (``ServerSettings.socket_send_buffer_bytes``) and the sweeper closes it with 4008
  once its unread bytes stayed above ``SessionLimits.max_unread_bytes`` for
  ``unread_timeout_s``, or its buffer stayed full for ``send_timeout_s``; the close
  frame follows the backlog and the socket is reset after ``close_grace_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import msgspec

from chatcore._extras import missing_extra

try:
    from multidict import CIMultiDict, CIMultiDictProxy
    from picows import (
        WSAutoPingStrategy,
        WSCloseCode,
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        WSUpgradeResponse,
        WSUpgradeResponseWithListener,
    )
    from picows.picows import WSProtocol  # type: ignore[attr-defined]
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("server", exc, needed_by="chatcore.server.native") from exc

from chatcore.errors import ChatcoreClosed, RateLimited
from chatcore.events import Event, MessageEvent
from chatcore.gateway.backlog import UnreadBacklog
from chatcore.gateway.session import (
    Action,
    Close,
    CloseCode,
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
    FrameCodec,
    ServerFrame,
    Welcome,
)
from chatcore.server.handler import RequestHandler
from chatcore.server.host import ConnectionHost
from chatcore.server.policy import origin_allowed
from chatcore.server.sockets import kernel_unsent_bytes

if TYPE_CHECKING:
    from chatcore.server.app import ChatServer

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_MAX_FRAMES",
    "MAX_MESSAGE_BYTES",
    "NativeConnection",
    "NativeGateway",
    "native_websocket",
    "ws_frame",
]

logger = logging.getLogger(__name__)

_picows_logger = logging.getLogger("chatcore.server.native.picows")
_picows_logger.setLevel(logging.WARNING)  # picows logs every connection at info
# A logger-like object, not a Logger: picows then makes no child logger per socket.
_PICOWS_LOG = logging.LoggerAdapter(_picows_logger, {})

_access_log = logging.getLogger("uvicorn.error")  # uvicorn's lines for its WebSockets

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""The largest WebSocket message a client may send (uvicorn's ``ws_max_size`` on the
ASGI path); a larger one closes the socket with 1009. The protocol's own limit
(``ServerSettings.max_frame_bytes``, answered ``too_large``) is far below."""
BATCH_MAX_FRAMES = 64
"""At most this many frames in one batch."""
BATCH_MAX_BYTES = 256 * 1024
"""A batch stops growing past this many bytes of frames."""
MAX_PENDING_READS = 64
"""Frames a connection may have waiting for its reader before reading pauses."""
READ_BUFFER_BYTES = 2048
"""A socket's first read buffer (picows' smallest; it grows with larger frames)."""
CLOSE_WAIT_S = 5.0
"""How long a close waits for the client's close frame before dropping the socket."""

_TEXT = 0x1
_BINARY = 0x2
_CLOSE = 0x8


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final WebSocket frame (what a server sends)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


_msgpack_encode = msgspec.msgpack.Encoder().encode


def _batch_payload(codec: FrameCodec, payloads: list[bytes]) -> bytes:
    """Encoded frames as one array (JSON, or a MessagePack array), without re-encoding."""
    if not codec.binary:
        return b"[" + b",".join(payloads) + b"]"
    return _msgpack_encode(list(map(msgspec.Raw, payloads)))


class _WireFrames:
    """Each recent pushed event as a framed payload, built once per codec."""

    __slots__ = ("_built", "_host", "_size")

    def __init__(self, host: ConnectionHost, size: int = 4096) -> None:
        self._host = host
        self._size = size
        self._built: dict[tuple[int, str], tuple[Event, bytes, bytes]] = {}

    def get(self, event: Event, codec: FrameCodec) -> tuple[bytes, bytes]:
        """``(payload, frame)`` of ``event`` in ``codec``."""
        key = (id(event), codec.subprotocol)
        hit = self._built.get(key)
        if hit is not None and hit[0] is event:
            return hit[1], hit[2]
        message = self._host.push_frames.message(event, codec)  # metrics, signed links
        payload: bytes = message["bytes"] if codec.binary else message["text"].encode()
        frame = ws_frame(_BINARY if codec.binary else _TEXT, payload)
        if len(self._built) >= self._size:
            del self._built[next(iter(self._built))]
        self._built[key] = (event, payload, frame)
        return payload, frame


class NativeGateway:
    """The picows side of one :class:`~chatcore.server.app.ChatServer`: accepts
    ``/ws`` upgrades and builds their connections."""

    def __init__(self, server: ChatServer, *, path: str = "/ws") -> None:
        self.server = server
        self.host = server.host
        self.path = path.encode()
        self.frames = _WireFrames(server.host)
        self.tasks: set[asyncio.Task[None]] = set()
        """Connection tasks in progress (kept referenced until they end)."""
        self.open: set[NativeConnection] = set()
        """Sockets not yet disconnected (a closed session may wait for its socket)."""
        self._disconnected: asyncio.Event | None = None

    def protocol(self, peer: str) -> asyncio.BaseProtocol:
        """A picows server protocol for one socket (of client ``peer``) whose upgrade
        request comes next."""
        return WSProtocol(  # type: ignore[no-any-return]
            None,
            None,
            False,
            lambda request: self._listener(request, peer),
            _PICOWS_LOG,
            True,  # disconnect_on_exception
            None,  # the upgrade request is already here (uvicorn parsed it)
            False,  # the sweeper pings (NativeConnection.tick): no task per socket
            20.0,
            20.0,
            WSAutoPingStrategy.PING_PERIODICALLY,
            True,  # answer pings
            MAX_MESSAGE_BYTES,
            None,
            READ_BUFFER_BYTES,
        )

    def _listener(self, request: WSUpgradeRequest, peer: str) -> WSUpgradeResponseWithListener:
        headers = request.headers
        allowed = self.server.settings.allowed_origins
        path = request.path.decode("latin-1")
        if self.host.draining or not origin_allowed(
            headers.get("origin"), headers.get("host"), allowed
        ):
            _access_log.info('%s - "WebSocket %s" 403', peer, path)
            return _refuse()
        _access_log.info('%s - "WebSocket %s" [accepted]', peer, path)
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        subprotocol = next((p for p in offered if p in SUBPROTOCOLS), None)
        extra = {"Sec-WebSocket-Protocol": subprotocol} if subprotocol else None
        conn = NativeConnection(self, subprotocol)
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(extra), conn)

    def spawn(self, work: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def disconnected(self, conn: NativeConnection) -> None:
        self.open.discard(conn)
        if not self.open and self._disconnected is not None:
            self._disconnected.set()

    async def wait_closed(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until every socket has disconnected and every
        connection has been unregistered."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.open:
                    self._disconnected = asyncio.Event()
                    await self._disconnected.wait()
                while self.tasks:
                    await asyncio.wait(list(self.tasks))


def _refuse() -> WSUpgradeResponseWithListener:
    """403, as uvicorn answers a WebSocket the ASGI app closes before accepting it."""
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_error_response(HTTPStatus.FORBIDDEN, b""), None
    )


class NativeConnection(WSListener):
    """One client WebSocket on picows: the shell around a GatewaySession."""

    __slots__ = (
        "_backlog",
        "_closed",
        "_codec",
        "_disconnected",
        "_flush_due",
        "_fragment_size",
        "_fragment_type",
        "_fragments",
        "_handler",
        "_inbox",
        "_loop",
        "_opcode",
        "_payloads",
        "_ping_at",
        "_pong_due",
        "_reader",
        "_stalled_since",
        "_timer",
        "batch",
        "busy",
        "conn",
        "gateway",
        "host",
        "session",
        "subprotocol",
        "transport",
        "writes",
    )

    def __init__(self, gateway: NativeGateway, subprotocol: str | None) -> None:
        self.gateway = gateway
        self.host = host = gateway.host
        self.subprotocol = subprotocol
        self.session = host.session(subprotocol or SUBPROTOCOL_JSON, now=time.monotonic())
        self._codec = self.session.codec
        self._opcode = _BINARY if self._codec.binary else _TEXT
        self.busy = False
        self.conn: LocalConnection | None = None
        self._handler: RequestHandler | None = None
        self.transport: WSTransport | None = None
        self._closed = False
        self._disconnected = False
        # frames waiting for the reader, with when each arrived (time.monotonic())
        self._inbox: list[tuple[bytes | str, float]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._fragments: list[bytes] | None = None  # a fragmented message so far
        self._fragment_type = WSMsgType.TEXT
        self._fragment_size = 0
        self._payloads: list[bytes] = []  # encoded frames waiting for the next flush
        self._flush_due = False
        self._stalled_since = 0.0  # when the transport's buffer filled (0: it did not)
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self.batch = False
        """The client reads batches (it said so in ``hello``)."""
        self.writes = 0
        """``write`` calls made to the socket (one per flush, however many frames)."""
        self._backlog: UnreadBacklog | None = None  # only while above the limit
        self._ping_at = 0.0  # when the sweeper pings next (0: never)
        self._pong_due = 0.0  # when the pong of the ping in flight is late (0: none)

    # --- the sweeper's and the server's interface (as ClientConnection's) ------------

    async def go_away(self) -> None:
        """Close with 1001 (server going away)."""
        self._close_now(CloseCode.GOING_AWAY, "server going away")

    async def _close(self, code: int, reason: str) -> None:
        self._close_now(code, reason)

    def retire_idle_writer(self, now: float) -> None:
        """Nothing to retire: pushes need no task on this path."""

    def tick(self, now: float) -> None:
        """The time-driven rules (the sweeper calls this): an expired token closes with
        4001 (the session's rule); the server's ping is due every
        ``ws_ping_interval_s``, and a pong later than ``ws_ping_timeout_s`` closes with
        1011, as uvicorn does on the ASGI path. No task per connection for either."""
        for action in self.session.tick(now=now):
            if isinstance(action, Close):
                self._close_now(action.code, action.reason)
                return
        if self._closed or self.transport is None:
            return
        if self._pong_due and now >= self._pong_due:
            self._close_now(1011, "keepalive ping timeout")
        elif self._ping_at and now >= self._ping_at:
            settings = self.gateway.server.settings
            interval, timeout = settings.ws_ping_interval_s, settings.ws_ping_timeout_s
            self._ping_at = now + interval if interval else 0.0
            if timeout and not self._pong_due:
                self._pong_due = now + timeout
            self.transport.send_ping()

    def close_unauthorized(self, reason: str) -> None:
        """Close with 4001 (the token was revoked)."""
        self.session.close()
        self._close_now(CloseCode.UNAUTHORIZED, reason)

    def drop_if_stalled(self, now: float) -> bool:
        """Drop the connection if its writes have been held up ``send_timeout_s``
        (the client stopped reading); True if it did."""
        started = self._stalled_since
        if not started or now - started < self.host.send_timeout_s:
            return False
        logger.info("dropping a connection that stopped reading (send waited %.1fs)", now - started)
        self._stalled_since = 0.0
        self._close_slow("slow consumer: a send waited too long; reconnect and sync")
        return True

    def check_backlog(self, now: float) -> bool:
        """Close the connection with 4008 if its unread bytes (the transport's buffer
        and the kernel's send queue) have stayed above ``max_unread_bytes`` for
        ``unread_timeout_s`` (the sweeper calls this); True if it did."""
        if self._closed or self.transport is None or self._disconnected:
            return False
        raw = self.transport.underlying_transport
        unread = raw.get_write_buffer_size() + kernel_unsent_bytes(raw.get_extra_info("socket"))
        backlog = self._backlog
        if backlog is None:  # below the limit until now: no state to keep
            limits = self.host.limits
            if limits.max_unread_bytes < 0 or unread <= limits.max_unread_bytes:
                return False
            backlog = self._backlog = UnreadBacklog(
                limits.max_unread_bytes, limits.unread_timeout_s
            )
        if not backlog.observe(unread, now):
            if backlog.above_since is None:
                self._backlog = None
            return False
        logger.info("closing a connection that stopped reading (unread bytes above the limit)")
        self._close_slow("slow consumer: too much unread; reconnect and sync")
        return True

    def _close_slow(self, reason: str) -> None:
        """Close with 4008 now, as the ASGI path does: the close frame is queued behind
        what the client has not read, the connection leaves the server and the hub at
        once, and the TCP connection is reset after ``close_grace_s`` unless the client
        read up to the frame and closed. A second call resets it at once."""
        if self._closed:
            self._abort()
            return
        self._close_now(CloseCode.SLOW_CONSUMER, reason, wait_s=self.host.close_grace_s)
        self.gateway.server.connections.discard(self)
        if self.conn is not None:
            self.gateway.spawn(self._unregister())

    # --- picows callbacks -------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        _forget_handshake(transport)
        size = self.gateway.server.settings.socket_send_buffer_bytes
        sock = transport.underlying_transport.get_extra_info("socket")
        if size is not None and sock is not None:  # the backlog shows, not hidden in the kernel
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        self.gateway.open.add(self)
        self.gateway.server.connections.add(self)
        self._arm_hello_deadline()
        interval = self.gateway.server.settings.ws_ping_interval_s
        if interval:
            self._ping_at = time.monotonic() + interval

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._disconnected = True
        self._closed = True
        self.session.close()
        self._inbox = None
        self._payloads.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.gateway.server.connections.discard(self)
        self.gateway.disconnected(self)
        if self.conn is not None or self._reader is not None:
            self.gateway.spawn(self._unregister())

    def pause_writing(self) -> None:
        self._stalled_since = time.monotonic()

    def resume_writing(self) -> None:
        self._stalled_since = 0.0
        self._ready()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.CLOSE:
            self._closed = True
            self.session.close()
            if not transport.is_close_frame_sent:
                code = frame.get_close_code()
                transport.send_close(code if code != WSCloseCode.NO_INFO else WSCloseCode.OK)
            transport.disconnect()
            return
        if kind is WSMsgType.PONG:
            self._pong_due = 0.0
            return
        if kind is WSMsgType.PING:  # answered by picows
            return
        if kind is WSMsgType.CONTINUATION or not frame.fin or self._fragments:
            data = self._fragment(frame)
            if data is None:
                return
        elif kind is WSMsgType.TEXT:
            try:
                data = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                self._invalid_text()
                return
        else:
            data = frame.get_payload_as_bytes()
        if self._closed or self.host.draining:
            return
        if self._reader is not None:
            inbox = self._inbox
            if inbox is None:
                inbox = self._inbox = []
            inbox.append((data, time.monotonic()))
            if len(inbox) >= MAX_PENDING_READS:
                transport.underlying_transport.pause_reading()
            return
        self._run(self.session.receive(data, now=time.monotonic()))

    # --- reading ----------------------------------------------------------------------

    def _fragment(self, frame: WSFrame) -> bytes | str | None:
        """A fragmented message: the whole message once its last frame is here."""
        if frame.msg_type is not WSMsgType.CONTINUATION:
            if self._fragments:  # a new message inside a fragmented one
                self._protocol_error(WSCloseCode.PROTOCOL_ERROR, "expected a continuation frame")
                return None
            self._fragment_type = frame.msg_type
        elif not self._fragments and not self._fragment_size:
            self._protocol_error(WSCloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
            return None
        self._fragment_size += frame.payload_size
        if self._fragment_size > MAX_MESSAGE_BYTES:
            self._protocol_error(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
            return None
        if self._fragments is None:
            self._fragments = []
        self._fragments.append(frame.get_payload_as_bytes())
        if not frame.fin:
            return None
        data = b"".join(self._fragments)
        self._fragments = None
        self._fragment_size = 0
        if self._fragment_type is WSMsgType.TEXT:
            try:
                return data.decode()
            except UnicodeDecodeError:
                self._invalid_text()
                return None
        return data

    def _invalid_text(self) -> None:
        logger.debug("closing a WebSocket with 1007: a text frame is not UTF-8")
        self._protocol_error(WSCloseCode.INVALID_TEXT, "text frame is not UTF-8")

    def _protocol_error(self, code: WSCloseCode, reason: str) -> None:
        if self._closed:
            return
        self._write([])  # what is pending goes first
        self._closed = True
        self.session.close()
        if self.transport is not None:
            self.transport.send_close(code, reason.encode())
            self.transport.disconnect()

    def _run(self, actions: list[Action]) -> None:
        """Carry out a frame's actions; from the first that awaits the pipeline on,
        in a reader task (later frames wait in the inbox, in order)."""
        for i, action in enumerate(actions):
            if isinstance(action, Reply):
                self._reply(action.frame)
            elif isinstance(action, Close):
                self._close_now(action.code, action.reason)
                return
            else:
                self.busy = True
                self._reader = self.gateway.spawn(self._read(actions[i:]))
                return

    async def _read(self, actions: list[Action]) -> None:
        waited_s = 0.0  # how long the frame of ``actions`` waited in the inbox
        try:
            while True:
                if not await self._act(actions, waited_s):
                    return
                inbox = self._inbox
                if not inbox or self._closed:
                    return
                data, arrived = inbox.pop(0)
                if not inbox:
                    self._inbox = None
                    if self.transport is not None and not self._disconnected:
                        self.transport.underlying_transport.resume_reading()
                if self.host.draining:
                    self._inbox = None
                    return
                now = time.monotonic()
                waited_s = now - arrived
                actions = self.session.receive(data, now=now)
        except Exception:
            logger.exception("a request failed; closing its connection with 1011")
            self._close_now(1011, "internal error")
        finally:
            self.busy = False
            self._reader = None

    async def _act(self, actions: list[Action], waited_s: float = 0.0) -> bool:
        """Carry out ``actions`` (of a frame that waited ``waited_s`` in the inbox);
        False once the connection closed."""
        for action in actions:
            match action:
                case Reply(frame=frame):
                    self._reply(frame)
                    if isinstance(frame, Welcome):  # never in a batch: batches start after it
                        self._write([])
                        self.batch = self.session.batch
                case Close(code=code, reason=reason):
                    self._close_now(code, reason)
                    return False
                case Opened(user=user, device=device, request_id=rid):
                    if self._timer is not None:
                        self._timer.cancel()
                        self._timer = None
                    try:
                        self.conn, self._handler = await self.host.open(user, device)
                    except RateLimited as exc:
                        self._reply(error_frame(exc, rid))
                        self._close_now(CloseCode.POLICY_VIOLATION, exc.message)
                        return False
                    if self._disconnected:
                        return False  # _unregister closes it
                    self.conn.when_ready(self._ready)
                    self._ready()
                case Handle(frame=request):
                    assert self._handler is not None
                    for frame in await self._handler.handle(request, waited_s=waited_s):
                        self._reply(frame)
        return not self._closed

    async def _unregister(self) -> None:
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            with contextlib.suppress(BaseException):
                await asyncio.shield(reader)
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await self.host.close(conn)

    # --- the hello deadline -----------------------------------------------------------

    def _arm_hello_deadline(self) -> None:
        due = self.session.deadline()
        if due is not None and self.session.state is SessionState.AWAITING_HELLO:
            delay = max(0.0, due - time.monotonic())
            self._timer = self._loop.call_later(delay, self._hello_due)

    def _hello_due(self) -> None:
        self._timer = None
        if self.session.state is not SessionState.AWAITING_HELLO:
            return
        for action in self.session.tick(now=time.monotonic()):
            if isinstance(action, Close):
                self._close_now(action.code, action.reason)
                return
        self._arm_hello_deadline()  # woke a bit early

    # --- writing ----------------------------------------------------------------------

    def _reply(self, frame: ServerFrame) -> None:
        metrics = self.host.metrics
        if isinstance(frame, AcceptedFrame):
            metrics.accepted.inc()
        elif isinstance(frame, ErrorFrame):
            metrics.errors.labels(frame.code).inc()
        if self._closed:
            return
        self._payloads.append(self._codec.encode_server(frame))
        self._schedule_flush()

    def _ready(self) -> None:
        """The hub queued an event (or the connection ended): flush this iteration."""
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write every pending frame and queued event with one ``write``."""
        self._flush_due = False
        if self._closed:
            return
        transport = self.transport
        conn = self.conn
        payloads = self._payloads
        pushed: list[bytes] = []  # whole frames of events (cached), when not batching
        if conn is not None and not self._stalled_since:
            try:
                events = conn.take_nowait()
            except ChatcoreClosed:
                events = None
            if events:
                messages = 0
                frames = self.gateway.frames
                codec = self._codec
                for event in events:
                    messages += isinstance(event, MessageEvent)
                    payload, frame = frames.get(event, codec)
                    if self.batch:
                        payloads.append(payload)
                    else:
                        if payloads:  # replies first, in order
                            pushed.extend(ws_frame(self._opcode, p) for p in payloads)
                            payloads.clear()
                        pushed.append(frame)
                if messages:
                    self.host.metrics.delivered.inc(messages)
            elif events is None:
                self._write(pushed)
                if conn.close_reason == "slow_consumer":
                    self._close_now(CloseCode.SLOW_CONSUMER, "slow consumer: reconnect and sync")
                elif conn.close_reason == "shutdown":
                    self._close_now(CloseCode.GOING_AWAY, "server going away")
                return
        if transport is None:
            return
        self._write(pushed)

    def _write(self, pushed: list[bytes]) -> None:
        """Frame the pending payloads (batched for a client that reads batches) after
        ``pushed`` and write them all at once."""
        payloads = self._payloads
        if payloads:
            if self.batch and len(payloads) > 1:
                pushed.extend(self._batches(payloads))
            else:
                pushed.extend(ws_frame(self._opcode, p) for p in payloads)
            payloads.clear()
        if pushed and self.transport is not None and not self._disconnected:
            data = pushed[0] if len(pushed) == 1 else b"".join(pushed)
            self.transport.underlying_transport.write(data)
            self.writes += 1

    def _batches(self, payloads: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        group: list[bytes] = []
        size = 0
        for payload in payloads:
            if group and (len(group) >= BATCH_MAX_FRAMES or size + len(payload) > BATCH_MAX_BYTES):
                out.append(self._batch_frame(group))
                group, size = [], 0
            group.append(payload)
            size += len(payload)
        out.append(self._batch_frame(group))
        return out

    def _batch_frame(self, group: list[bytes]) -> bytes:
        if len(group) == 1:
            return ws_frame(self._opcode, group[0])
        return ws_frame(self._opcode, _batch_payload(self._codec, group))

    def _close_now(self, code: int, reason: str, *, wait_s: float | None = None) -> None:
        """Send a close frame after what is pending; the TCP connection ends
        ``CLOSE_WAIT_S`` later if the client has not closed it, or with ``wait_s`` is
        reset then (a slow consumer's backlog is dropped, not trickled out)."""
        if self._closed:
            return
        self._write([])  # what is pending goes first
        self._closed = True
        self.session.close()
        self.host.metrics.closes.labels(str(code)).inc()
        transport = self.transport
        if transport is None or self._disconnected:
            return
        transport.send_close(WSCloseCode(code), reason.encode()[:123])  # flexible enum
        if wait_s is not None:
            self._loop.call_later(wait_s, self._abort)
            return
        if transport.underlying_transport.get_write_buffer_size():
            self._stalled_since = self._stalled_since or time.monotonic()
        self._loop.call_later(CLOSE_WAIT_S, self._disconnect_late)

    def _disconnect_late(self) -> None:
        if not self._disconnected and self.transport is not None:
            self.transport.disconnect(graceful=False)

    def _abort(self) -> None:
        """Reset the TCP connection (SO_LINGER 0): what the kernel still holds to send
        is dropped instead of trickling out to a client that does not read."""
        if self.transport is None or self._disconnected:
            return
        raw = self.transport.underlying_transport
        sock = raw.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.abort()


_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def _forget_handshake(transport: WSTransport) -> None:
    """Drop the upgrade's headers: picows keeps its request and response for the
    socket's life, and their headers (about 1 KiB per idle connection) are not read
    after the handshake."""
    for message in (transport.request, transport.response):
        if message is not None:
            message.headers = cast("CIMultiDict[str]", _NO_HEADERS)  # read-only, shared


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Hand bytes already read from the socket to a protocol, buffered or not."""
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
    elif isinstance(protocol, asyncio.Protocol):
        protocol.data_received(data)


def native_websocket(
    gateway: NativeGateway, fallback: type[asyncio.Protocol]
) -> type[asyncio.Protocol]:
    """uvicorn's ``ws`` protocol class: a ``/ws`` upgrade goes to picows
    (``gateway``), any other path to ``fallback`` (uvicorn's WebSocket protocol for
    the ASGI app)."""

    class NativeUpgrade(asyncio.Protocol):
        """Picks the protocol of an upgraded socket from its request's path."""

        def __init__(self, **kwargs: Any) -> None:
            self._kwargs = kwargs
            self._transport: Any = None  # uvloop's transports are no asyncio.Transport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._transport = transport

        def data_received(self, data: bytes) -> None:
            transport = self._transport
            assert transport is not None
            target = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b""
            protocol: asyncio.BaseProtocol
            if target.split(b"?", 1)[0] == gateway.path:
                peer = transport.get_extra_info("peername")
                client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"
                protocol = gateway.protocol(client)
            else:
                protocol = fallback(**self._kwargs)
            protocol.connection_made(transport)
            transport.set_protocol(protocol)
            _feed(protocol, data)

        def connection_lost(self, exc: Exception | None) -> None:
            self._transport = None

    return NativeUpgrade
