"""The built-in ``ConnectionRegistry`` backends run ``chatcore.testing.ConnectionRegistrySuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from chatcore.model import Connection
from chatcore.registry import ConnectionRegistry, MemoryConnectionRegistry
from chatcore.registry.redis import RedisConnectionRegistry
from chatcore.testing import ConnectionRegistrySuite


class TestMemory(ConnectionRegistrySuite):
    @pytest.fixture
    def make_registry(self) -> Callable[[], Awaitable[ConnectionRegistry]]:
        async def make() -> ConnectionRegistry:
            return MemoryConnectionRegistry()

        return make


@pytest.mark.services
class TestRedis(ConnectionRegistrySuite):
    @pytest.fixture
    def make_registry(
        self, redis_url: str, redis_prefix: Callable[[], str]
    ) -> Callable[[], Awaitable[ConnectionRegistry]]:
        async def make() -> ConnectionRegistry:
            return RedisConnectionRegistry(redis_url, prefix=redis_prefix())

        return make


# -- memory backend only ----------------------------------------------------------------


@pytest.mark.anyio
async def test_memory_registry_expires_by_its_injected_clock() -> None:
    now = [100.0]
    conn = Connection("ann", "phone", "gw", "c1")
    async with MemoryConnectionRegistry(clock=lambda: now[0]) as registry:
        await registry.register(conn, ttl_s=10)
        now[0] = 105.0
        await registry.register(conn, ttl_s=10)
        now[0] = 114.9
        assert await registry.lookup(["ann"]) == {"ann": [conn]}
        now[0] = 115.0
        assert await registry.lookup(["ann"]) == {}
        await registry.register(conn, ttl_s=1)
        assert await registry.lookup(["ann"]) == {"ann": [conn]}
