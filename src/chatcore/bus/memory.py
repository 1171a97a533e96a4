"""In-memory ``GatewayBus``: single process only, and lossy like the port allows.

Each subscription has its own buffer of ``buffer`` payloads (default 10 000). When a
subscriber falls that far behind, its oldest undelivered payload is dropped (counted
in ``dropped``): ``publish`` never waits, a slow gateway never holds up the others,
and what it still gets is the newest, in publish order. A payload published to a
gateway nobody subscribes to is dropped. Clients recover any loss by ``seq``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from chatcore._broadcast import Broadcast
from chatcore._memory import MemoryAdapter

__all__ = ["MemoryGatewayBus"]


class MemoryGatewayBus(MemoryAdapter):
    """Payloads to the subscribers of a gateway name, each with a ``buffer``-deep queue."""

    def __init__(self, *, buffer: int = 10_000) -> None:
        """Raises ``InvalidRequest`` if ``buffer`` is below 1."""
        self._gateways = Broadcast[bytes](buffer=buffer)

    @property
    def dropped(self) -> int:
        """Payloads dropped from full subscriber buffers so far."""
        return self._gateways.dropped

    def _release(self) -> None:
        self._gateways.close()  # ends every open subscription after what it has buffered

    async def publish(self, gateway: str, payload: bytes) -> None:
        """Send ``payload`` to the subscribers of ``gateway`` (none: dropped).

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self.publish_many([(gateway, payload)])

    async def publish_many(self, payloads: Sequence[tuple[str, bytes]]) -> None:
        """Send each ``(gateway, payload)`` as :meth:`publish` would, in order.

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._checkpoint()
        for gateway, payload in payloads:
            self._gateways.publish(payload, channel=gateway)

    @asynccontextmanager
    async def subscribe(self, gateway: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Receive what is published to ``gateway`` from now on, in publish order.

        The iterator ends when the bus is closed. Raises ``ChatcoreClosed`` after
        ``aclose()``.
        """
        await self._checkpoint()
        with self._gateways.subscribe(channel=gateway) as payloads:
            yield payloads
