"""The GatewayBus port: fast, lossy delivery of events to one gateway.

The bus is for speed, not truth: a gateway that is down or slow may miss events.
Clients recover anything missed from the log-backed store by ``seq`` (sync / gap
recovery), so no guarantee here is needed for correctness.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from chatcore._resource import AsyncResource

__all__ = ["GatewayBus"]


class GatewayBus(AsyncResource, Protocol):
    async def publish(self, gateway: str, payload: bytes) -> None:
        """Send ``payload`` to the subscribers of ``gateway`` (none: dropped)."""
        ...

    async def publish_many(self, payloads: Sequence[tuple[str, bytes]]) -> None:
        """Send each ``(gateway, payload)`` as :meth:`publish` would, in the given order.

        One call for many payloads (one round trip where the backend allows): a
        subscriber sees them in list order, after anything published before the call.
        """
        ...

    def subscribe(self, gateway: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Receive what is published to ``gateway`` from now on, in publish order."""
        ...
