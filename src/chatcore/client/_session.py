"""One welcomed connection: the ``hello`` handshake, the reader, and replies matched by ``id``.

A session lives from ``welcome`` until its transport closes; then it is *lost*
for good (every waiting request fails with :class:`ConnectionClosed`) and the
client opens a new one. Requests are matched to answers by ``id``; frames
without a waiting request (pushes) go to the client's ``on_push`` callback, which
must not block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NoReturn

import anyio
from typing_extensions import Buffer

from chatcore.client._backoff import CLOSE_UNAUTHORIZED
from chatcore.client._errors import error_from_frame
from chatcore.client._transport import Connector, Transport
from chatcore.errors import ChatcoreError, ConnectionClosed, ProtocolError, Unauthorized
from chatcore.protocol import (
    SUBPROTOCOLS,
    ClientFrame,
    ErrorFrame,
    FrameCodec,
    Hello,
    ServerFrame,
    Welcome,
)

__all__ = ["Reply", "Session", "Signal", "open_session"]

logger = logging.getLogger(__name__)


class Signal:
    """Wakes every task waiting on it; a notify with nobody waiting is not remembered."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Reply:
    """The answer to one request, filled in by the reader."""

    __slots__ = ("_done", "_error", "_frame")

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._frame: ServerFrame | None = None
        self._error: ChatcoreError | None = None

    def resolve(self, frame: ServerFrame) -> None:
        if not self._done.is_set():
            self._frame = frame
            self._done.set()

    def fail(self, error: ChatcoreError) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> ServerFrame:
        """The answer (an ``error`` frame included); raise what the session failed with."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._frame is not None
        return self._frame


class Session:
    """A connection after ``welcome``: send frames, await replies, read pushes."""

    def __init__(self, transport: Transport, codec: FrameCodec, welcome: Welcome, *, epoch: int):
        self.transport = transport
        self.codec = codec
        self.user = welcome.user
        self.device = welcome.device
        self.heartbeat_s = welcome.heartbeat_s
        self.epoch = epoch
        """Counts sessions of one client, from 1."""
        self.closed_with: ConnectionClosed | None = None
        self._replies: dict[int, Reply] = {}
        self._lost = anyio.Event()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def expect(self, request_id: int) -> Reply:
        """Register a reply for ``request_id`` (before sending the request)."""
        reply = self._replies[request_id] = Reply()
        if self.closed_with is not None:
            reply.fail(self.closed_with)
        return reply

    def discard(self, request_id: int) -> None:
        """Stop waiting for ``request_id`` (answered, or the caller gave up)."""
        self._replies.pop(request_id, None)

    async def send(self, frame: ClientFrame) -> None:
        """Send a frame; raise ConnectionClosed if the session is lost."""
        if self.closed_with is not None:
            raise self.closed_with
        try:
            await self.transport.send(self.codec.encode_client(frame), binary=self.codec.binary)
        except ConnectionClosed as exc:
            self.lose(exc)
            raise

    async def request(self, frame: ClientFrame, request_id: int) -> ServerFrame:
        """Send a request and await its answer; raise ConnectionClosed if the session is lost."""
        reply = self.expect(request_id)
        try:
            await self.send(frame)
            return await reply.wait()
        finally:
            self.discard(request_id)

    def lose(self, error: ConnectionClosed) -> None:
        """Mark the session lost: every waiting request fails with ``error``."""
        if self.closed_with is not None:
            return
        self.closed_with = error
        for reply in self._replies.values():
            reply.fail(error)
        self._replies.clear()
        self._lost.set()

    async def wait_lost(self) -> None:
        await self._lost.wait()

    def abort(self, reason: str) -> None:
        """Drop the connection now (a missed heartbeat); the reader sees it closed."""
        self.lose(ConnectionClosed(f"connection dropped: {reason}"))
        self.transport.abort()

    async def read(self, on_push: Callable[[ServerFrame], None]) -> NoReturn:
        """Route frames until the transport closes, then raise its ConnectionClosed."""
        while True:
            try:
                data = await self.transport.receive()
            except ConnectionClosed as exc:
                self.lose(exc)
                raise
            try:
                parts = self.codec.split_server(data)  # a batch holds several frames
            except ProtocolError as exc:
                self._undecodable(data, exc)
                continue
            for part in parts:
                try:
                    frame = self.codec.decode_server(part)
                except ProtocolError as exc:
                    self._undecodable(part, exc)
                    continue
                request_id = getattr(frame, "id", None)
                reply = None if request_id is None else self._replies.get(request_id)
                if reply is not None:
                    reply.resolve(frame)
                else:
                    on_push(frame)

    def _undecodable(self, data: Buffer | str, exc: ProtocolError) -> None:
        request_id = self.codec.request_id(data)
        reply = None if request_id is None else self._replies.get(request_id)
        if reply is not None:
            reply.fail(exc)
        else:
            logger.warning("dropped a server frame that does not decode: %s", exc)


async def open_session(
    connector: Connector,
    url: str,
    *,
    subprotocol: str,
    token: str,
    device: str,
    request_id: int,
    epoch: int,
    max_frame_bytes: int,
) -> Session:
    """Connect, say ``hello`` and wait for ``welcome``.

    Raises Unauthorized if the token is refused (close code 4001 or an
    ``unauthorized`` error), ProtocolError if the server picks a subprotocol this
    client does not speak, the matching error for any other ``error`` answer, and
    Unavailable (ConnectionClosed included) if the connection fails or closes first.
    """
    transport = await connector(url, [subprotocol])
    try:
        chosen = transport.subprotocol or subprotocol
        if chosen not in SUBPROTOCOLS:
            raise ProtocolError(f"the server chose an unknown subprotocol {chosen!r}")
        codec = FrameCodec(chosen, max_frame_bytes=max_frame_bytes)
        hello = Hello(id=request_id, token=token, device=device, batch=True)
        await transport.send(codec.encode_client(hello), binary=codec.binary)
        while True:
            frame = codec.decode_server(await transport.receive())
            if isinstance(frame, Welcome) and frame.id == request_id:
                return Session(transport, codec, frame, epoch=epoch)
            if isinstance(frame, ErrorFrame):
                raise error_from_frame(frame)
            logger.debug("ignored %s before welcome", type(frame).__name__)
    except ConnectionClosed as exc:
        transport.abort()
        if exc.close_code == CLOSE_UNAUTHORIZED:
            raise Unauthorized(
                f"the server refused the token: {exc.reason or 'closed 4001'}"
            ) from exc
        raise
    except BaseException:
        transport.abort()
        raise
