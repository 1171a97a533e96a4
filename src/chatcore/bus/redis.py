"""Redis ``GatewayBus``: one pub/sub channel per gateway, ``bus:{g:<gateway>}``.

Lossy like the port allows: a payload published while nobody subscribes is dropped,
and Redis disconnects a subscriber that falls behind by more than its pub/sub output
buffer (``client-output-buffer-limit pubsub``, 32 MB by default). A subscription
whose connection is lost reconnects and subscribes again by itself (for up to
``timeout_s``, then its iterator raises ``Unavailable``); what was published
meanwhile is lost. Clients recover any loss by ``seq``. Each subscription holds
one Redis connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, RedisAdapter, RedisClient

__all__ = ["RedisGatewayBus"]


class RedisGatewayBus(RedisAdapter):
    """Payloads to the subscribers of a gateway name, over Redis pub/sub.

    ``redis`` is a URL (the bus makes and closes its client) or a
    ``redis.asyncio.Redis`` or ``RedisCluster`` client (borrowed); on a cluster the
    channels are sharded (``SPUBLISH``/``SSUBSCRIBE``: each lives on the primary of
    its slot, so the bus scales with the primaries). ``prefix`` (``"chatcore:"``) starts
    every channel; ``timeout_s`` (5.0): see :class:`chatcore._redis.RedisKeyspace`.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)

    async def publish(self, gateway: str, payload: bytes) -> None:
        """Send ``payload`` to the subscribers of ``gateway`` (none: dropped).

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        await self._redis.publish(self._channel(gateway), payload)

    async def publish_many(self, payloads: Sequence[tuple[str, bytes]]) -> None:
        """Send each ``(gateway, payload)`` as :meth:`publish` would, in order, in one
        pipelined round trip.

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails
        (some payloads may have been published).
        """
        client = await self._redis.ready()
        if not payloads:
            return
        with self._redis.errors("publish"):
            async with client.pipeline(transaction=False) as pipe:
                for gateway, payload in payloads:
                    self._redis.pipe_publish(pipe, self._channel(gateway), payload)
                await pipe.execute()

    @asynccontextmanager
    async def subscribe(self, gateway: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Receive what is published to ``gateway`` from now on, in publish order.

        The iterator ends when the bus is closed. Raises ``ChatcoreClosed`` after
        ``aclose()``; entering and iterating raise ``Unavailable`` if Redis fails.
        """
        async with self._redis.subscribe(self._channel(gateway), sharded=True) as payloads:
            yield payloads

    def _channel(self, gateway: str) -> str:
        return self._redis.key("bus", f"{{g:{gateway}}}")
