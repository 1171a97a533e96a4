"""Frames as ASGI send messages, and the per-server cache of pushed events' messages."""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any

from chatcore.events import Event, MessageEvent
from chatcore.gateway.convert import event_frame
from chatcore.protocol import FrameCodec, Message
from chatcore.server.metrics import ServerMetrics

__all__ = ["ASGIMessage", "PushFrames", "send_message"]

ASGIMessage = MutableMapping[str, Any]


def send_message(codec: FrameCodec, data: bytes) -> ASGIMessage:
    """The ASGI ``websocket.send`` of one encoded frame (binary or text, as ``codec``)."""
    if codec.binary:
        return {"type": "websocket.send", "bytes": data}
    return {"type": "websocket.send", "text": data.decode()}


class PushFrames:
    """The ASGI send message of each recent event, built once per codec.

    The hub hands the same event object to every target connection; the first
    connection to push it converts and encodes it, the others reuse the message.
    Holds the last ``size`` events per codec (the cache is keyed by identity and
    keeps the event alive, so an id is never reused while its entry exists).
    """

    def __init__(
        self,
        metrics: ServerMetrics,
        size: int = 4096,
        *,
        links: Callable[[Message], Message] | None = None,
    ) -> None:
        """``links`` signs the attachment URLs of pushed messages (every target of an
        event is a member of its chat, so one signed frame serves them all)."""
        self._metrics = metrics
        self._links = links
        self._size = size
        self._built: dict[tuple[int, str], tuple[Event, ASGIMessage]] = {}

    def message(self, event: Event, codec: FrameCodec) -> ASGIMessage:
        key = (id(event), codec.subprotocol)
        hit = self._built.get(key)
        if hit is not None and hit[0] is event:
            return hit[1]
        if isinstance(event, MessageEvent):
            lag = time.time() - event.message.ts / 1000
            self._metrics.latency.observe(max(0.0, lag))
        frame = event_frame(event)
        if self._links is not None and isinstance(frame, Message):
            frame = self._links(frame)
        message = send_message(codec, codec.encode_server(frame))
        if len(self._built) >= self._size:
            del self._built[next(iter(self._built))]
        self._built[key] = (event, message)
        return message
