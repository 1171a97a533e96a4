"""Fan-out to in-process subscribers that never waits: a full buffer drops its oldest item.

Each subscriber of a channel has its own buffer of ``buffer`` items. ``publish``
puts an item in every buffer of its channel at once; when a subscriber has fallen
that far behind, its oldest undelivered item is dropped (counted in ``dropped``),
so a slow subscriber never holds up the publisher or the other subscribers and
what it still gets is the newest, in publish order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from chatcore.errors import InvalidRequest

__all__ = ["Broadcast"]

T = TypeVar("T")

# Both ends of one subscriber's buffer: we send into it and drop its oldest from it.
_Subscriber = tuple[MemoryObjectSendStream[T], MemoryObjectReceiveStream[T]]


class Broadcast(Generic[T]):
    """Subscribers by channel name, each with a ``buffer``-deep queue that drops its oldest."""

    def __init__(self, *, buffer: int) -> None:
        """Raises InvalidRequest if ``buffer`` is below 1."""
        if buffer < 1:
            raise InvalidRequest(f"buffer must be at least 1, got {buffer}")
        self._buffer = buffer
        self._channels: dict[str, list[_Subscriber[T]]] = {}
        self.dropped = 0
        """Items dropped from full subscriber buffers so far."""

    def publish(self, item: T, *, channel: str = "") -> None:
        """Put ``item`` in the buffer of every subscriber of ``channel`` (none: dropped)."""
        for subscriber in list(self._channels.get(channel, ())):
            self._offer(channel, subscriber, item)

    @contextmanager
    def subscribe(self, *, channel: str = "") -> Iterator[AsyncIterator[T]]:
        """Receive what is published to ``channel`` from now on, until ``close()``."""
        send, receive = anyio.create_memory_object_stream[T](self._buffer)
        subscriber = (send, receive)
        self._channels.setdefault(channel, []).append(subscriber)
        try:
            with receive:
                yield receive
        finally:
            send.close()
            self._remove(channel, subscriber)

    def close(self) -> None:
        """End every subscription after what it has buffered. Idempotent."""
        for subscribers in self._channels.values():
            for send, _ in subscribers:
                send.close()
        self._channels.clear()

    def _offer(self, channel: str, subscriber: _Subscriber[T], item: T) -> None:
        send, receive = subscriber
        try:
            send.send_nowait(item)
        except anyio.WouldBlock:
            receive.receive_nowait()
            self.dropped += 1
            send.send_nowait(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._remove(channel, subscriber)

    def _remove(self, channel: str, subscriber: _Subscriber[T]) -> None:
        subscribers = self._channels.get(channel)
        if subscribers is None or subscriber not in subscribers:
            return
        subscribers.remove(subscriber)
        if not subscribers:
            del self._channels[channel]
