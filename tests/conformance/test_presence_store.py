"""The built-in ``PresenceStore`` backends run ``chatcore.testing.PresenceStoreSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from chatcore.presence import MemoryPresenceStore, PresenceStore
from chatcore.presence.redis import RedisPresenceStore
from chatcore.testing import PresenceStoreSuite


class TestMemory(PresenceStoreSuite):
    @pytest.fixture
    def make_store(self) -> Callable[[], Awaitable[PresenceStore]]:
        async def make() -> PresenceStore:
            return MemoryPresenceStore()

        return make


@pytest.mark.services
class TestRedis(PresenceStoreSuite):
    @pytest.fixture
    def make_store(
        self, redis_url: str, redis_prefix: Callable[[], str]
    ) -> Callable[[], Awaitable[PresenceStore]]:
        async def make() -> PresenceStore:
            return RedisPresenceStore(redis_url, prefix=redis_prefix())

        return make
