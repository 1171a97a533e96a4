"""An in-memory test double of a chatcore server, behind an in-memory ``Transport``.

It speaks the real frames through the real JSON codec and keeps just enough state
(messages per chat) to answer ``hello``, ``ping``, ``send``, ``history``, ``sync``
and ``chats``. Tests steer it: close a connection with any code, stop answering
some frame types, lose pushes, refuse tokens. No sockets, so close codes and
timeouts are exact.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from chatcore.client import ConnectionClosed, Transport
from chatcore.protocol import (
    SUBPROTOCOL_JSON,
    AcceptedFrame,
    ChatList,
    ChatSummary,
    ClientFrame,
    ErrorFrame,
    FrameCodec,
    Hello,
    History,
    HistoryPageFrame,
    ListChats,
    Message,
    Ping,
    Pong,
    Send,
    ServerFrame,
    Sync,
    Synced,
    SyncedChat,
    Welcome,
)

__all__ = ["FakeConnection", "FakeServer"]

CODEC = FrameCodec(SUBPROTOCOL_JSON)


@dataclass(frozen=True)
class _Closed:
    code: int | None


class _ClientEnd:
    """The client's side of one fake connection."""

    def __init__(
        self,
        inbound: MemoryObjectReceiveStream[bytes | _Closed],
        outbound: MemoryObjectSendStream[bytes],
    ) -> None:
        self._inbound = inbound
        self._outbound = outbound
        self.closed: int | None = None

    @property
    def subprotocol(self) -> str | None:
        return SUBPROTOCOL_JSON

    async def send(self, data: bytes, *, binary: bool) -> None:
        if self.closed is not None:
            raise ConnectionClosed("closed", close_code=self.closed)
        try:
            await self._outbound.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise ConnectionClosed("closed", close_code=1006) from exc

    async def receive(self) -> bytes | str:
        try:
            item = await self._inbound.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError) as exc:
            raise ConnectionClosed("closed", close_code=self.closed) from exc
        if isinstance(item, _Closed):
            self.closed = item.code if item.code is not None else 1006
            raise ConnectionClosed(f"closed {item.code}", close_code=item.code)
        return item

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        self.closed = self.closed or code
        self._outbound.close()

    def abort(self) -> None:
        self.closed = self.closed or 1006
        self._outbound.close()
        self._inbound.close()


@dataclass
class FakeConnection:
    """The server's side of one connection, plus what it received."""

    to_client: MemoryObjectSendStream[bytes | _Closed]
    from_client: MemoryObjectReceiveStream[bytes]
    received: list[ClientFrame] = field(default_factory=list)
    user: str | None = None

    async def push(self, frame: ServerFrame) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self.to_client.send(CODEC.encode_server(frame))

    async def close(self, code: int | None) -> None:
        """Close from the server side with ``code`` (None: dropped without a close frame)."""
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self.to_client.send(_Closed(code))
        self.to_client.close()


class FakeServer:
    """Serves fake connections in a task group; ``connector`` hands them to a ChatClient."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        self.connections: list[FakeConnection] = []
        self.messages: dict[str, list[Message]] = defaultdict(list)
        self.members: dict[str, set[str]] = defaultdict(set)
        self.ignore: set[type[ClientFrame]] = set()
        """Frame types to leave unanswered."""
        self.lose_push: Callable[[Message], bool] = lambda message: False
        self.refuse_tokens = False
        self.heartbeat_s = 30
        self.stored: dict[tuple[str, str], Message] = {}
        self.overloaded: dict[type[ClientFrame], int] = {}
        """How many more frames of a type to refuse as ``overloaded`` (50 ms)."""

    async def connector(self, url: str, subprotocols: Sequence[str]) -> Transport:
        to_client, client_in = anyio.create_memory_object_stream[bytes | _Closed](1000)
        client_out, from_client = anyio.create_memory_object_stream[bytes](1000)
        conn = FakeConnection(to_client, from_client)
        self.connections.append(conn)
        self._tg.start_soon(self._serve, conn)
        return _ClientEnd(client_in, client_out)

    async def wait_connections(self, n: int, *, timeout_s: float = 5.0) -> FakeConnection:
        with anyio.fail_after(timeout_s):
            while len(self.connections) < n:
                await anyio.sleep(0.005)
        return self.connections[n - 1]

    def add_message(self, chat: str, sender: str, body: str, cmid: str = "") -> Message:
        seq = len(self.messages[chat]) + 1
        message = Message(
            chat=chat,
            seq=seq,
            message_id=str(10_000 + seq),
            sender=sender,
            client_msg_id=cmid or f"{chat}-{seq}",
            kind="text",
            body=body,
            ts=1_700_000_000_000 + seq,
        )
        self.messages[chat].append(message)
        return message

    async def publish(self, message: Message) -> None:
        for conn in self.connections:
            if conn.user in self.members[message.chat] and not self.lose_push(message):
                await conn.push(message)

    async def _serve(self, conn: FakeConnection) -> None:
        async for data in conn.from_client:
            frame = CODEC.decode_client(data)
            conn.received.append(frame)
            if type(frame) in self.ignore:
                continue
            if self.overloaded.get(type(frame), 0) > 0:
                self.overloaded[type(frame)] -= 1
                request_id = getattr(frame, "id", None)
                await conn.push(
                    ErrorFrame(id=request_id, code="overloaded", message="busy", retry_after_ms=50)
                )
                continue
            for answer in await self._answer(conn, frame):
                await conn.push(answer)

    async def _answer(self, conn: FakeConnection, frame: ClientFrame) -> list[ServerFrame]:
        match frame:
            case Hello():
                if self.refuse_tokens:
                    await conn.close(4001)
                    return []
                conn.user = frame.token
                return [
                    Welcome(
                        id=frame.id,
                        user=frame.token,
                        device=frame.device,
                        heartbeat_s=self.heartbeat_s,
                    )
                ]
            case Ping():
                return [Pong(id=frame.id)]
            case Send():
                assert conn.user is not None
                key = (conn.user, frame.client_msg_id)
                if key not in self.stored:
                    self.stored[key] = message = self.add_message(
                        frame.chat, conn.user, frame.body, frame.client_msg_id
                    )
                    self._tg.start_soon(self.publish, message)
                stored = self.stored[key]
                return [
                    AcceptedFrame(
                        id=frame.id,
                        chat=frame.chat,
                        client_msg_id=frame.client_msg_id,
                        message_id=stored.message_id,
                    )
                ]
            case History():
                rows = self.messages[frame.chat]
                if frame.after is not None:
                    page = rows[frame.after : frame.after + frame.limit]
                    more = frame.after + frame.limit < len(rows)
                else:
                    end = len(rows) if frame.before is None else frame.before - 1
                    page = rows[max(0, end - frame.limit) : end]
                    more = end - frame.limit > 0
                return [
                    HistoryPageFrame(id=frame.id, chat=frame.chat, messages=page, has_more=more)
                ]
            case Sync():
                mine = [c for c, users in self.members.items() if conn.user in users]
                chats = mine if frame.cursors is None else [c for c in mine if c in frame.cursors]
                out: list[ServerFrame] = []
                states = []
                for chat in chats:
                    last = len(self.messages[chat])
                    if frame.cursors is not None:
                        out.extend(self.messages[chat][frame.cursors[chat] :])
                    states.append(
                        SyncedChat(chat=chat, last_seq=last, read_seq=0, delivered_seq=0, unread=0)
                    )
                return [*out, Synced(id=frame.id, chats=states)]
            case ListChats():
                return [ChatList(id=frame.id, chats=list[ChatSummary]())]
        return [ErrorFrame(id=getattr(frame, "id", None), code="invalid", message="unsupported")]
