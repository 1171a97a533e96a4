"""Test harness for the SDK against a real server: recorded devices and a meddling transport.

``Device`` is a connected :class:`ChatClient` whose events a background task records
(messages per chat, everything else in order), with ``wait_until`` to poll for a
condition. ``MeddlingConnector`` opens real WebSockets but lets a test cut them under
the client (a TCP abort, no close frame) or lose chosen server frames on the way in,
to provoke the recovery paths without touching the server.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import msgspec

from chatcore.client import (
    ChatClient,
    ClientEvent,
    ClientOptions,
    MessageReceived,
    Transport,
    connect_websocket,
)
from chatcore.protocol import SUBPROTOCOL_JSON, Message

__all__ = [
    "Device",
    "FrameFilter",
    "MeddlingConnector",
    "device",
    "wait_until",
]

_E = TypeVar("_E")

FrameFilter = Callable[[dict[str, Any]], bool]
"""Given a decoded server frame, True to lose it."""


async def wait_until(
    condition: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout_s``."""
    try:
        with anyio.fail_after(timeout_s):
            while not condition():
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}") from None


class Device:
    """A client plus everything it has yielded so far."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.messages: dict[str, list[Message]] = defaultdict(list)
        self.events: list[ClientEvent] = []

    async def record(self) -> None:
        async for event in self.client.events():
            self.events.append(event)
            if isinstance(event, MessageReceived):
                self.messages[event.chat].append(event.message)

    def seqs(self, chat: str) -> list[int]:
        return [m.seq for m in self.messages[chat]]

    def of_type(self, kind: type[_E]) -> list[_E]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for_seq(self, chat: str, seq: int, *, timeout_s: float = 15.0) -> None:
        await wait_until(
            lambda: bool(self.messages[chat]) and self.messages[chat][-1].seq >= seq,
            timeout_s=timeout_s,
            what=f"seq {seq} of {chat} (have {len(self.messages[chat])})",
        )


@asynccontextmanager
async def device(
    url: str,
    token: str,
    name: str = "d1",
    *,
    subprotocol: str = SUBPROTOCOL_JSON,
    options: ClientOptions | None = None,
    cursors: dict[str, int] | None = None,
    connector: MeddlingConnector | None = None,
    keyring: Path | None = None,
) -> AsyncIterator[Device]:
    """A connected, recorded device for the duration of the block."""
    client = ChatClient(
        url,
        token=token,
        device=name,
        subprotocol=subprotocol,
        options=options,
        cursors=cursors,
        connector=connector,
        keyring=keyring,
    )
    async with client, anyio.create_task_group() as tg:
        recorded = Device(client)
        tg.start_soon(recorded.record)
        yield recorded
        tg.cancel_scope.cancel()


class _MeddledTransport:
    """A real WebSocket transport that can lose chosen inbound frames."""

    def __init__(self, inner: Transport, lose: FrameFilter | None) -> None:
        self.inner = inner
        self.lose = lose
        self.lost: list[dict[str, Any]] = []

    @property
    def subprotocol(self) -> str | None:
        return self.inner.subprotocol

    async def send(self, data: bytes, *, binary: bool) -> None:
        await self.inner.send(data, binary=binary)

    async def receive(self) -> bytes | str:
        while True:
            data = await self.inner.receive()
            if self.lose is None:
                return data
            decoded, encode = _peek(data)
            if isinstance(decoded, dict):
                if not self.lose(decoded):
                    return data
                self.lost.append(decoded)
                continue
            # a batch (the client asked for them in hello): lose frames one by one
            kept = []
            for frame in decoded:
                if self.lose(frame):
                    self.lost.append(frame)
                else:
                    kept.append(frame)
            if len(kept) == len(decoded):
                return data
            if kept:
                return encode(kept)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self.inner.aclose(code, reason)

    def abort(self) -> None:
        self.inner.abort()


Frames = dict[str, Any] | list[dict[str, Any]]


def _peek(data: bytes | str) -> tuple[Frames, Callable[[list[dict[str, Any]]], bytes | str]]:
    """A frame, or the frames of a batch (a JSON or MessagePack array); and how to
    encode a batch as ``data`` was."""
    encode: Callable[[list[dict[str, Any]]], bytes | str]
    if isinstance(data, str):
        decoded, encode = json.loads(data), json.dumps
    else:
        try:
            decoded, encode = json.loads(data), lambda frames: json.dumps(frames).encode()
        except ValueError:
            decoded, encode = msgspec.msgpack.decode(data), msgspec.msgpack.encode
    frames = [dict(f) for f in decoded] if isinstance(decoded, list) else dict(decoded)
    return frames, encode


class MeddlingConnector:
    """Opens real WebSockets; ``cut()`` drops them, ``lose`` filters frames coming in."""

    def __init__(self, lose: FrameFilter | None = None) -> None:
        self.lose = lose
        self.opened: list[_MeddledTransport] = []

    async def __call__(self, url: str, subprotocols: Sequence[str]) -> Transport:
        transport = _MeddledTransport(await connect_websocket(url, subprotocols), self.lose)
        self.opened.append(transport)
        return transport

    @property
    def lost(self) -> list[dict[str, Any]]:
        return [frame for t in self.opened for frame in t.lost]

    def cut(self) -> None:
        """Drop the newest connection under the client: a TCP abort, no close frame."""
        self.opened[-1].abort()
