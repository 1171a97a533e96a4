"""In-memory ``GatewayBus``: single process only, and lossy like the port allows.

Each subscription has its own buffer of ``buffer`` payloads (default 10 000). When a
subscriber falls that far behind, its oldest undelivered payload is dropped (counted
in ``dropped``): ``publish`` never waits, a slow gateway never holds up the others,
and what it still gets is the newest, in publish order. A payload published to a
gateway nobody subscribes to is dropped. Clients recover any loss by ``seq``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from chatcore.errors import ChatcoreClosed, InvalidRequest

__all__ = ["MemoryGatewayBus"]

_Subscriber = tuple[MemoryObjectSendStream[bytes], MemoryObjectReceiveStream[bytes]]


class MemoryGatewayBus:
    """Payloads to the subscribers of a gateway name, each with a ``buffer``-deep queue."""

    def __init__(self, *, buffer: int = 10_000) -> None:
        if buffer < 1:
            raise InvalidRequest(f"buffer must be at least 1, got {buffer}")
        self._buffer = buffer
        self._subscribers: dict[str, list[_Subscriber]] = {}
        self._closed = False
        self.dropped = 0
        """Payloads dropped from full subscriber buffers so far."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End every open subscription (after what it has buffered). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for subscribers in self._subscribers.values():
            for send, _ in subscribers:
                send.close()
        self._subscribers.clear()

    async def publish(self, gateway: str, payload: bytes) -> None:
        """Send ``payload`` to the subscribers of ``gateway`` (none: dropped).

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        for subscriber in list(self._subscribers.get(gateway, ())):
            self._offer(gateway, subscriber, payload)

    @asynccontextmanager
    async def subscribe(self, gateway: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Receive what is published to ``gateway`` from now on, in publish order.

        The iterator ends when the bus is closed. Raises ``ChatcoreClosed`` after
        ``aclose()``.
        """
        await self._checkpoint()
        send, receive = anyio.create_memory_object_stream[bytes](self._buffer)
        subscriber = (send, receive)
        self._subscribers.setdefault(gateway, []).append(subscriber)
        try:
            with receive:
                yield receive
        finally:
            send.close()
            self._remove(gateway, subscriber)

    def _offer(self, gateway: str, subscriber: _Subscriber, payload: bytes) -> None:
        send, receive = subscriber
        try:
            send.send_nowait(payload)
        except anyio.WouldBlock:
            receive.receive_nowait()
            self.dropped += 1
            send.send_nowait(payload)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._remove(gateway, subscriber)

    def _remove(self, gateway: str, subscriber: _Subscriber) -> None:
        subscribers = self._subscribers.get(gateway)
        if subscribers is None or subscriber not in subscribers:
            return
        subscribers.remove(subscriber)
        if not subscribers:
            del self._subscribers[gateway]

    async def _checkpoint(self) -> None:
        if self._closed:
            raise ChatcoreClosed("MemoryGatewayBus used after aclose()")
        await anyio.lowlevel.checkpoint()
