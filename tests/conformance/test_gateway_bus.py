"""The built-in ``GatewayBus`` backends run ``chatcore.testing.GatewayBusSuite``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from chatcore.bus import GatewayBus, MemoryGatewayBus
from chatcore.bus.redis import RedisGatewayBus
from chatcore.testing import GatewayBusSuite


class TestMemory(GatewayBusSuite):
    @pytest.fixture
    def make_bus(self) -> Callable[[], Awaitable[GatewayBus]]:
        async def make() -> GatewayBus:
            return MemoryGatewayBus()

        return make


@pytest.mark.services
class TestRedis(GatewayBusSuite):
    @pytest.fixture
    def make_bus(
        self, redis_url: str, redis_prefix: Callable[[], str]
    ) -> Callable[[], Awaitable[GatewayBus]]:
        async def make() -> GatewayBus:
            return RedisGatewayBus(redis_url, prefix=redis_prefix())

        return make


# -- memory backend only: its documented drop policy ----------------------------------


async def receive(payloads: AsyncIterator[bytes], n: int = 1) -> list[bytes]:
    with anyio.fail_after(2.0):
        return [await anext(payloads) for _ in range(n)]


@pytest.mark.anyio
async def test_memory_bus_drops_the_oldest_when_a_subscriber_falls_behind() -> None:
    async with MemoryGatewayBus(buffer=3) as bus, bus.subscribe("gw") as slow:
        async with bus.subscribe("gw") as other:
            for i in range(5):
                await bus.publish("gw", b"%d" % i)
            assert bus.dropped == 4
            assert await receive(other, 3) == [b"2", b"3", b"4"]
        assert await receive(slow, 3) == [b"2", b"3", b"4"]
        await bus.publish("gw", b"5")
        assert await receive(slow) == [b"5"]
        assert bus.dropped == 4
