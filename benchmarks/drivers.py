"""The load generator's clients: one per connection, the same small face for every target.

* :class:`ChatcoreDriver` is a :class:`chatcore.client.ChatClient` (the SDK, with
  its ordering, cursors and outbox), bound to a chosen loopback source address.
* :class:`WireDriver` speaks chatcore's protocol (JSON subprotocol) over a bare
  ``websockets`` connection: hello, requests by id, pushes. It is as lean as the
  peers' drivers, so a scenario measuring the server is not limited by the SDK's
  per-message work on the load generator's core.
* :class:`SocketioDriver` speaks Engine.IO 4 / Socket.IO 5 over a bare
  ``websockets`` connection: the few frames the peer's ``join``/``send`` need.
* :class:`CentrifugoDriver` speaks Centrifugo's JSON protocol (client protocol v2)
  over a bare ``websockets`` connection: connect, subscribe, publish, pushes.
* :class:`BareDriver` only holds a ``websockets`` connection open (idle peer).

A driver calls ``on_message(body)`` for every chat message it receives.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

import anyio
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from benchmarks.peers.centrifugo import NAMESPACE as CENTRIFUGO_NAMESPACE
from chatcore.client import (
    ChatClient,
    ClientOptions,
    MessageReceived,
    Transport,
    WebSocketTransport,
)
from chatcore.errors import Overloaded, Unavailable
from chatcore.protocol import (
    SUBPROTOCOL_JSON,
    AcceptedFrame,
    ChatCreate,
    ChatFrame,
    ClientFrame,
    ErrorFrame,
    Hello,
    Send,
    ServerFrame,
    Welcome,
    codec_for,
)
from chatcore.server.auth import TokenAuthority

__all__ = [
    "BareDriver",
    "CentrifugoDriver",
    "ChatcoreDriver",
    "Driver",
    "SocketioDriver",
    "WireDriver",
    "driver_factory",
]

OnMessage = Callable[[str], None]

_OPTIONS = ClientOptions(
    connect_timeout_s=120.0,
    request_timeout_s=120.0,
    send_timeout_s=300.0,
    event_queue=100_000,
    backfill_limit=0,
)


class Driver(Protocol):
    """One connection of the load generator."""

    async def run(self, connected: Callable[[], None], stop: anyio.Event) -> None:
        """Connect, call ``connected()``, stay until ``stop``; raise what connecting raised."""
        ...

    async def create_room(self, title: str, members: Sequence[str]) -> str:
        """Create a chat (group) of this user and ``members``; its id."""
        ...

    async def join(self, room: str) -> None:
        """Make sure this connection receives the room's messages."""
        ...

    async def send(self, room: str, body: str) -> None:
        """Send and wait for the server's acknowledgement (``accepted``)."""
        ...


async def _open_websocket(
    url: str, source_ip: str, subprotocols: Sequence[str] = ()
) -> ClientConnection:
    try:
        return await connect(
            url,
            subprotocols=[Subprotocol(p) for p in subprotocols] or None,
            open_timeout=120,
            ping_interval=None,
            close_timeout=1,
            max_size=8 * 1024 * 1024,
            proxy=None,
            local_addr=(source_ip, 0),
        )
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise Unavailable(f"cannot connect to {url} from {source_ip}: {exc}") from exc


async def _hold(
    ws: ClientConnection,
    handshake: Callable[[ClientConnection], Awaitable[None]],
    read: Callable[[ClientConnection], Coroutine[Any, Any, None]],
    connected: Callable[[], None],
    stop: anyio.Event,
) -> None:
    """Run ``handshake``, then ``read`` in the background until ``stop``; always close."""
    try:
        await handshake(ws)
        connected()
        async with anyio.create_task_group() as tg:
            tg.start_soon(read, ws)
            await stop.wait()
            tg.cancel_scope.cancel()
    finally:
        with contextlib.suppress(Exception):
            await ws.close()


class ChatcoreDriver:
    """A ChatClient for one user and device."""

    def __init__(
        self, url: str, user: str, authority: TokenAuthority, source_ip: str, on_message: OnMessage
    ) -> None:
        self.user = user
        self._source_ip = source_ip
        self._on_message = on_message
        self.client = ChatClient(
            url,
            device="bench",
            token=authority.issue(user),
            options=_OPTIONS,
            connector=self._connect,
        )

    async def _connect(self, url: str, subprotocols: Sequence[str]) -> Transport:
        return WebSocketTransport(await _open_websocket(url, self._source_ip, subprotocols))

    async def run(self, connected: Callable[[], None], stop: anyio.Event) -> None:
        async with self.client, anyio.create_task_group() as tg:
            connected()
            tg.start_soon(self._consume)
            await stop.wait()
            tg.cancel_scope.cancel()

    async def _consume(self) -> None:
        on_message = self._on_message
        async for event in self.client.events():
            if isinstance(event, MessageReceived):
                on_message(event.message.body)

    async def create_room(self, title: str, members: Sequence[str]) -> str:
        others = [m for m in members if m != self.user]
        if len(others) == 1:
            return (await self.client.create_direct(others[0])).chat
        return (await self.client.create_group(title, others)).chat

    async def join(self, room: str) -> None:
        return None  # membership is the server's business

    async def send(self, room: str, body: str) -> None:
        await self.client.send(room, body)


class _Push(msgspec.Struct):
    """The two fields a wire driver reads from every frame (the rest is skipped)."""

    type: str
    id: int | None = None
    body: str | None = None


_CODEC = codec_for(SUBPROTOCOL_JSON)
_PUSH = msgspec.json.Decoder(_Push)
_BATCH = msgspec.json.Decoder(list[msgspec.Raw])


class WireDriver:
    """chatcore's JSON protocol over a bare ``websockets`` connection (no SDK). It asks
    for batches in ``hello`` (as the SDK does) and reads them."""

    def __init__(
        self, url: str, user: str, authority: TokenAuthority, source_ip: str, on_message: OnMessage
    ) -> None:
        self.url = url
        self.user = user
        self._token = authority.issue(user)
        self._source_ip = source_ip
        self._on_message = on_message
        self._ws: ClientConnection | None = None
        self._replies: dict[int, anyio.Event] = {}
        self._answers: dict[int, str | bytes] = {}
        self._ids = itertools.count(2)
        self._msg_ids = itertools.count(1)

    async def run(self, connected: Callable[[], None], stop: anyio.Event) -> None:
        ws = self._ws = await _open_websocket(self.url, self._source_ip, [SUBPROTOCOL_JSON])
        await _hold(ws, self._hello, self._read, connected, stop)

    async def _hello(self, ws: ClientConnection) -> None:
        hello = Hello(id=1, token=self._token, device="bench", batch=True)
        await ws.send(_CODEC.encode_client(hello))
        welcome = _CODEC.decode_server(await ws.recv())
        if not isinstance(welcome, Welcome):
            raise Unavailable(f"expected welcome, got {welcome!r}")

    async def _read(self, ws: ClientConnection) -> None:
        on_message = self._on_message
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                parts = _BATCH.decode(raw) if raw[:1] in ("[", b"[") else (raw,)
                for part in parts:
                    frame = _PUSH.decode(part)
                    if frame.type == "message":
                        on_message(frame.body or "")
                    elif frame.id is not None and frame.id in self._replies:
                        self._answers[frame.id] = (
                            bytes(part) if isinstance(part, msgspec.Raw) else part
                        )
                        self._replies.pop(frame.id).set()

    async def _request(self, frame: ClientFrame) -> ServerFrame:
        assert self._ws is not None, "not connected"
        request_id = getattr(frame, "id")  # noqa: B009 (every request frame has one)
        done = self._replies[request_id] = anyio.Event()
        await self._ws.send(_CODEC.encode_client(frame).decode())
        await done.wait()
        return _CODEC.decode_server(self._answers.pop(request_id))

    async def create_room(self, title: str, members: Sequence[str]) -> str:
        others = [m for m in members if m != self.user]
        if len(others) == 1:
            request = ChatCreate(id=next(self._ids), kind="direct", members=others)
        else:
            request = ChatCreate(id=next(self._ids), kind="group", members=others, title=title)
        reply = await self._request(request)
        if not isinstance(reply, ChatFrame):
            raise Unavailable(f"creating {title!r} failed: {reply!r}")
        return reply.chat.chat

    async def join(self, room: str) -> None:
        return None  # membership is the server's business

    async def send(self, room: str, body: str) -> None:
        request = Send(
            id=next(self._ids),
            chat=room,
            client_msg_id=f"{self.user}-{next(self._msg_ids)}",
            kind="text",
            body=body,
        )
        reply = await self._request(request)
        if isinstance(reply, ErrorFrame) and reply.code == "overloaded":
            raise Overloaded(reply.message, retry_after_ms=reply.retry_after_ms or 0)
        if not isinstance(reply, AcceptedFrame):
            raise Unavailable(f"send failed: {reply!r}")


class SocketioDriver:
    """A minimal Engine.IO 4 / Socket.IO 5 client over ``websockets`` (no polling)."""

    def __init__(self, url: str, user: str, source_ip: str, on_message: OnMessage) -> None:
        base = url.replace("/ws", "").rstrip("/")
        self.url = f"{base}/socket.io/?EIO=4&transport=websocket"
        self.user = user
        self._source_ip = source_ip
        self._on_message = on_message
        self._ws: ClientConnection | None = None
        self._acks: dict[int, anyio.Event] = {}
        self._ids = itertools.count(1)

    async def run(self, connected: Callable[[], None], stop: anyio.Event) -> None:
        ws = self._ws = await _open_websocket(self.url, self._source_ip)
        await _hold(ws, self._connect, self._read, connected, stop)

    async def _connect(self, ws: ClientConnection) -> None:
        opened = await ws.recv()
        if not str(opened).startswith("0"):
            raise Unavailable(f"unexpected Engine.IO open packet {opened!r}")
        await ws.send("40")
        joined = await ws.recv()
        if not str(joined).startswith("40"):
            raise Unavailable(f"unexpected Socket.IO connect answer {joined!r}")

    async def _read(self, ws: ClientConnection) -> None:
        on_message = self._on_message
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                data = raw if isinstance(raw, str) else raw.decode()
                if data.startswith("42["):  # event: ["message", body]
                    on_message(json.loads(data[2:])[1])
                elif data.startswith("43"):  # ack: 43<id>[...]
                    end = data.index("[")
                    event = self._acks.pop(int(data[2:end]), None)
                    if event is not None:
                        event.set()
                elif data == "2":  # Engine.IO ping
                    await ws.send("3")

    async def _emit_with_ack(self, event: str, data: Any) -> None:
        assert self._ws is not None, "not connected"
        ack_id = next(self._ids)
        done = self._acks[ack_id] = anyio.Event()
        await self._ws.send(f"42{ack_id}" + json.dumps([event, data], separators=(",", ":")))
        await done.wait()

    async def create_room(self, title: str, members: Sequence[str]) -> str:
        return title

    async def join(self, room: str) -> None:
        await self._emit_with_ack("join", room)

    async def send(self, room: str, body: str) -> None:
        await self._emit_with_ack("send", {"room": room, "body": body})


class _CentrifugoData(msgspec.Struct):
    b: str = ""


class _CentrifugoPublication(msgspec.Struct):
    data: _CentrifugoData | None = None


class _CentrifugoPush(msgspec.Struct):
    pub: _CentrifugoPublication | None = None


class _CentrifugoFrame(msgspec.Struct):
    id: int = 0
    push: _CentrifugoPush | None = None
    error: dict[str, Any] | None = None


_CENTRIFUGO_FRAME = msgspec.json.Decoder(_CentrifugoFrame)


class CentrifugoDriver:
    """Centrifugo's JSON protocol over a bare ``websockets`` connection.

    A connection connects with a JWT, subscribes to the room's channel
    (``bench:<room>``) and publishes ``{"b": body}`` to it. A frame may hold several
    newline-separated replies and pushes; an empty object is a ping, answered with one.
    """

    def __init__(
        self, url: str, user: str, authority: TokenAuthority, source_ip: str, on_message: OnMessage
    ) -> None:
        self.url = url
        self.user = user
        self._token = authority.issue(user)
        self._source_ip = source_ip
        self._on_message = on_message
        self._ws: ClientConnection | None = None
        self._replies: dict[int, anyio.Event] = {}
        self._answers: dict[int, _CentrifugoFrame] = {}
        self._ids = itertools.count(1)

    async def run(self, connected: Callable[[], None], stop: anyio.Event) -> None:
        ws = self._ws = await _open_websocket(self.url, self._source_ip)
        await _hold(ws, self._connect, self._read, connected, stop)

    async def _connect(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps({"id": next(self._ids), "connect": {"token": self._token}}))
        for line in str(await ws.recv()).splitlines():
            reply = _CENTRIFUGO_FRAME.decode(line)
            if reply.id == 1:
                if reply.error is not None:
                    raise Unavailable(f"centrifugo refused the connection: {reply.error}")
                return
        raise Unavailable("centrifugo did not answer connect")

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                if self.handle(raw if isinstance(raw, bytes) else raw.encode()):
                    await ws.send("{}")  # a ping: answered with a pong

    def handle(self, frame: bytes) -> bool:
        """Take in one frame (newline-separated replies and pushes); whether it held a ping."""
        ping = False
        for line in frame.split(b"\n"):
            if line == b"{}":
                ping = True
            elif line:
                decoded = _CENTRIFUGO_FRAME.decode(line)
                push = decoded.push
                if push is not None:
                    if push.pub is not None and push.pub.data is not None:
                        self._on_message(push.pub.data.b)
                elif decoded.id in self._replies:
                    self._answers[decoded.id] = decoded
                    self._replies.pop(decoded.id).set()
        return ping

    async def _request(self, command: str, params: dict[str, Any]) -> None:
        assert self._ws is not None, "not connected"
        request_id = next(self._ids)
        done = self._replies[request_id] = anyio.Event()
        await self._ws.send(json.dumps({"id": request_id, command: params}))
        await done.wait()
        reply = self._answers.pop(request_id)
        if reply.error is not None:
            raise Unavailable(f"centrifugo refused {command}: {reply.error}")

    async def create_room(self, title: str, members: Sequence[str]) -> str:
        return f"{CENTRIFUGO_NAMESPACE}:{title}"  # a channel exists while someone subscribes

    async def join(self, room: str) -> None:
        await self._request("subscribe", {"channel": room})

    async def send(self, room: str, body: str) -> None:
        await self._request("publish", {"channel": room, "data": {"b": body}})


class BareDriver:
    """A bare WebSocket held open; it neither sends nor receives chat messages."""

    def __init__(self, url: str, source_ip: str) -> None:
        self.url = url
        self._source_ip = source_ip

    async def run(self, connected: Callable[[], None], stop: anyio.Event) -> None:
        ws = await _open_websocket(self.url, self._source_ip)
        connected()
        try:
            await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await ws.close()

    async def create_room(self, title: str, members: Sequence[str]) -> str:
        raise NotImplementedError("a bare connection has no rooms")

    async def join(self, room: str) -> None:
        raise NotImplementedError("a bare connection has no rooms")

    async def send(self, room: str, body: str) -> None:
        raise NotImplementedError("a bare connection sends nothing")


def driver_factory(
    target: str, url: str, secret: str, client: str = "sdk"
) -> Callable[[str, str, OnMessage], Driver]:
    """Makes the driver for ``target`` given (user, source_ip, on_message).

    ``client`` picks chatcore's driver: ``sdk`` (the ChatClient) or ``wire``."""
    if target.startswith("chatcore"):
        authority = TokenAuthority(secret)
        if client == "wire":
            return lambda user, ip, on_message: WireDriver(url, user, authority, ip, on_message)
        return lambda user, ip, on_message: ChatcoreDriver(url, user, authority, ip, on_message)
    if target == "centrifugo":
        authority = TokenAuthority(secret)
        return lambda user, ip, on_message: CentrifugoDriver(url, user, authority, ip, on_message)
    if target == "socketio":
        return lambda user, ip, on_message: SocketioDriver(url, user, ip, on_message)
    if target in ("websockets", "uvicorn"):
        return lambda user, ip, on_message: BareDriver(url, ip)
    raise ValueError(f"unknown target {target!r}")
